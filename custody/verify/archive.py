"""Step (1) of the exhibit checklist: read a bundle's ZIP only if it is well formed and bounded.

Every check on the central directory (names, links, sizes, the compression ratio, the number
of members) comes before any member is read, so a hostile archive costs no more than its
directory: nothing is extracted, no name is ever used as a path, and no member is inflated
past the size it declares (``zipfile`` stops there and checks the CRC). Then the members the
layout of docs/bundle.md gives meaning to are read, except each item's ``content``, which is
only streamed through the digests in step (7). Members outside the layout are not read, and
are listed so the output can say so.

Standard library only: this module is part of the offline verifier.
"""

from __future__ import annotations

import io
import mmap
import os
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from custody.verify.errors import VerifierError
from custody.verify.formats import BundleIndex, MalformedMember, parse_bundle_index

__all__ = [
    "MAX_COMPRESSION_RATIO",
    "MAX_CONTENT_BYTES",
    "MAX_MEMBERS",
    "MAX_MEMBER_BYTES",
    "MAX_METADATA_BYTES",
    "Archive",
    "ArchiveError",
    "ItemMembers",
    "SubjectMembers",
    "open_archive",
]

MAX_MEMBERS = 500_000
"""Most members a bundle may have (an item with 10,000 events has about 20,000)."""
MAX_MEMBER_BYTES = 64 * 1024**2
"""Largest member other than ``content``."""
MAX_METADATA_BYTES = 1024**3
"""Largest total of all members other than ``content``: what the verifier holds in memory."""
MAX_CONTENT_BYTES = 16 * 1024**4
"""Largest ``content`` member, and the largest total of them: they are streamed, never held."""
MAX_COMPRESSION_RATIO = 100
"""Largest ratio of a member's size to its compressed size (a bundle's members reach ~10)."""
MAX_NAME_BYTES = 256

CHECKPOINT = "checkpoint"
INDEX = "bundle.json"
KNOWN_CHECKPOINT = "known-checkpoint"
CONSISTENCY = "consistency"
REPORT = "report.html"
_TOP_LEVEL = frozenset({INDEX, CHECKPOINT, KNOWN_CHECKPOINT, CONSISTENCY})
_INDEXED = re.compile(r"(order/)?(events|proofs)/([0-9]{20})")
_ITEM_MEMBER = re.compile(r"items/(ev_[0-9a-f]{16})/(.+)")
_ORDER_FILES = frozenset({"order/document", "order/salt", "order/head"})
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_PLAIN_NAME = re.compile(r"(?:[A-Za-z0-9_-][A-Za-z0-9_.-]*/)*[A-Za-z0-9_-][A-Za-z0-9_.-]*")
_MSDOS_DIRECTORY = 0x10
_WINDOWS_REPARSE_POINT = 0x400
_UNIX = 3
_ENCRYPTED = 0x1
_CHUNK = 1024**2
# A local file header (APPNOTE 4.3.7): signature, version, flags, method, time, date, CRC-32,
# sizes, name length, extra length; only what is checked is kept.
_LOCAL_HEADER = struct.Struct("<4s2xHH16xHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_UTF8_NAME = 0x800


class ArchiveError(VerifierError):
    """The file is not a well-formed, bounded exhibit bundle; the message names the member."""


@dataclass
class SubjectMembers:
    """One subject's members (an item, or the order it answers): head, events and proofs
    by ledger index."""

    head: bytes | None = None
    events: dict[int, bytes] = field(default_factory=dict)
    proofs: dict[int, bytes] = field(default_factory=dict)


@dataclass
class ItemMembers:
    """What the bundle holds for one item; ``content`` stays in the archive until step (7)."""

    manifest: bytes | None = None
    subject: SubjectMembers = field(default_factory=SubjectMembers)
    order: SubjectMembers | None = None
    order_document: bytes | None = None
    order_salt: bytes | None = None
    receipt: bytes | None = None
    content: zipfile.ZipInfo | None = None


class _Members:
    """Reads members straight from the archive's bytes, once the directory passed its checks.

    ``zipfile`` reads each member through a file object built for it, which costs more than
    checking and inflating it here when a bundle has tens of thousands of small members. The
    checks are zipfile's and more: the local header names the same member with the same
    method, the compressed bytes lie inside the file, they inflate to exactly the declared size
    and their CRC-32 is the declared one.
    """

    def __init__(self, source: bytes | str | os.PathLike[str]) -> None:
        self._file: BinaryIO | None = None
        self._map: mmap.mmap | None = None
        if isinstance(source, bytes):
            self.zip = self._open(io.BytesIO(source))
            self.data: bytes | mmap.mmap = source
            return
        self._file = open(source, "rb")  # noqa: SIM115 (kept open until close())
        try:
            self.zip = self._open(self._file)
            self._map = self.data = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        except BaseException:
            self._file.close()
            raise

    @staticmethod
    def _open(file: BinaryIO) -> zipfile.ZipFile:
        try:
            return zipfile.ZipFile(file)
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            NotImplementedError,  # a ZIP version or feature zipfile does not read
            EOFError,
            ValueError,
            OSError,
        ) as exc:
            raise ArchiveError(f"the file is not a readable ZIP archive: {exc}") from None

    def read(self, info: zipfile.ZipInfo) -> bytes:
        """A whole member, within its checked size; ArchiveError if it is damaged."""
        name, start = info.filename, info.header_offset
        header = self.data[start : start + _LOCAL_HEADER.size]
        if len(header) != _LOCAL_HEADER.size:
            raise ArchiveError(f"the member {name} lies outside the file")
        signature, flags, method, name_length, extra_length = _LOCAL_HEADER.unpack(header)
        begin = start + _LOCAL_HEADER.size
        stored_name = self.data[begin : begin + name_length]
        encoding = "utf-8" if flags & _UTF8_NAME else "cp437"
        if signature != _LOCAL_SIGNATURE or stored_name.decode(encoding, "replace") != name:
            raise ArchiveError(f"the member {name} has no local header of its own")
        if method != info.compress_type:
            raise ArchiveError(f"the member {name} has two compression methods")
        begin += name_length + extra_length
        raw = self.data[begin : begin + info.compress_size]
        if len(raw) != info.compress_size:
            raise ArchiveError(f"the member {name} is cut short")
        if method == zipfile.ZIP_STORED:
            data = raw
        else:
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            try:
                data = inflater.decompress(raw, info.file_size + 1)
            except zlib.error as exc:
                raise ArchiveError(f"the member {name} is damaged: {exc}") from None
            if not inflater.eof:
                raise ArchiveError(f"the member {name} does not inflate to its declared size")
        if len(data) != info.file_size:
            raise ArchiveError(f"the member {name} is not the size it declares")
        if zlib.crc32(data) != info.CRC:
            raise ArchiveError(f"the member {name} is damaged: its CRC-32 is not the declared one")
        return data

    def optional(self, info: zipfile.ZipInfo | None) -> bytes | None:
        return None if info is None else self.read(info)

    def close(self) -> None:
        self.zip.close()
        if self._map is not None:
            self._map.close()
        if self._file is not None:
            self._file.close()


@dataclass
class Archive:
    """An opened bundle whose directory passed every bound, with its members read."""

    members: _Members
    index: BundleIndex
    checkpoint: bytes
    items: dict[str, ItemMembers]
    known_checkpoint: bytes | None
    consistency: bytes | None
    member_count: int
    unread: list[str]
    """Members outside the layout of docs/bundle.md: not read, not trusted."""

    def stream(self, info: zipfile.ZipInfo) -> Iterator[bytes]:
        """Yield a member's bytes in chunks; ArchiveError if it is damaged."""
        try:
            with self.members.zip.open(info) as member:
                while chunk := member.read(_CHUNK):
                    yield chunk
        except (zipfile.BadZipFile, EOFError, zlib.error, OSError, ValueError) as exc:
            raise ArchiveError(f"the member {info.filename} is damaged: {exc}") from None

    def close(self) -> None:
        self.members.close()


def open_archive(source: bytes | str | os.PathLike[str]) -> Archive:
    """Open a bundle, check its directory against every bound, then read its members.

    Raises ArchiveError naming the member and the bound it breaks.
    """
    members = _Members(source)
    try:
        return _read(members)
    except BaseException:
        members.close()
        raise


def _read(members: _Members) -> Archive:
    infos = members.zip.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ArchiveError(f"the archive has {len(infos)} members, more than {MAX_MEMBERS}")
    _check_directory(infos)
    by_name = {info.filename: info for info in infos}
    if INDEX not in by_name or CHECKPOINT not in by_name:
        raise ArchiveError(f"the archive has no {INDEX if INDEX not in by_name else CHECKPOINT}")
    try:
        index = parse_bundle_index(members.read(by_name[INDEX]))
    except MalformedMember as exc:
        raise ArchiveError(str(exc)) from None
    items: dict[str, ItemMembers] = {evidence_id: ItemMembers() for evidence_id in index.items}
    unread: list[str] = []
    for info in infos:
        name = info.filename
        if name in _TOP_LEVEL or name == REPORT:
            continue
        match = _ITEM_MEMBER.fullmatch(name)
        item = items.get(match.group(1)) if match else None
        if match is None or item is None or not _place(members, info, match.group(2), item):
            unread.append(name)
    for evidence_id, item in items.items():
        _check_item(evidence_id, item, index)
    _check_pair(by_name, index.known_checkpoint)
    return Archive(
        members=members,
        index=index,
        checkpoint=members.read(by_name[CHECKPOINT]),
        items=items,
        known_checkpoint=members.optional(by_name.get(KNOWN_CHECKPOINT)),
        consistency=members.optional(by_name.get(CONSISTENCY)),
        member_count=len(infos),
        unread=unread,
    )


def _check_directory(infos: list[zipfile.ZipInfo]) -> None:
    """Names, kinds, methods and sizes of every member, read from the directory alone."""
    seen: dict[str, str] = {}
    metadata = content = 0
    for info in infos:
        name = info.filename
        _check_name(name)
        folded = name.casefold()
        if folded in seen:
            same = seen[folded] == name
            raise ArchiveError(
                f"the member name {name!r} appears twice"
                if same
                else f"the member names {seen[folded]!r} and {name!r} differ only in case"
            )
        seen[folded] = name
        _check_kind(info)
        is_content = name.endswith("/content")
        limit = MAX_CONTENT_BYTES if is_content else MAX_MEMBER_BYTES
        if info.file_size > limit:
            raise ArchiveError(
                f"the member {name} is {info.file_size} bytes, more than its limit of {limit}"
            )
        if info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            raise ArchiveError(
                f"the member {name} inflates {info.compress_size} bytes to {info.file_size}, "
                f"more than {MAX_COMPRESSION_RATIO} times: refused as a possible ZIP bomb"
            )
        if is_content:
            content += info.file_size
        else:
            metadata += info.file_size
    if metadata > MAX_METADATA_BYTES:
        raise ArchiveError(
            f"the members other than content add up to {metadata} bytes, more than "
            f"{MAX_METADATA_BYTES}"
        )
    if content > MAX_CONTENT_BYTES:
        raise ArchiveError(f"the content members add up to {content} bytes, more than allowed")


def _check_name(name: str) -> None:
    """A relative path of plain components: nothing that could point outside the bundle."""
    if len(name) <= MAX_NAME_BYTES and _PLAIN_NAME.fullmatch(name):
        return  # ASCII components that do not start with a dot: nothing more to look at
    if not name or len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise ArchiveError(f"the member name {name!r} is empty or too long")
    if _CONTROL.search(name):
        raise ArchiveError(f"the member name {name!r} holds a control character")
    if "\\" in name:
        raise ArchiveError(f"the member name {name!r} holds a backslash")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise ArchiveError(f"the member name {name!r} is an absolute path")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise ArchiveError(
            f"the member name {name!r} has an empty, '.' or '..' component: "
            "it could point outside the bundle"
        )


def _check_kind(info: zipfile.ZipInfo) -> None:
    """A plain file, unencrypted, stored or deflated: no link, directory or device."""
    name = info.filename
    if info.create_system == _UNIX:
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind == stat.S_IFLNK:
            raise ArchiveError(f"the member {name} is a symbolic link")
        if kind not in (0, stat.S_IFREG):
            raise ArchiveError(f"the member {name} is not a regular file (mode {kind:o})")
    if info.external_attr & (_MSDOS_DIRECTORY | _WINDOWS_REPARSE_POINT):
        raise ArchiveError(f"the member {name} is a directory or a link")
    if info.flag_bits & _ENCRYPTED:
        raise ArchiveError(f"the member {name} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ArchiveError(f"the member {name} uses compression method {info.compress_type}")
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise ArchiveError(f"the stored member {name} declares two different sizes")


def _place(members: _Members, info: zipfile.ZipInfo, rest: str, item: ItemMembers) -> bool:
    """File a member of ``items/<id>/`` by its place in the layout; False if it has none."""
    if rest == "content":
        item.content = info
    elif rest == "manifest":
        item.manifest = members.read(info)
    elif rest == "head":
        item.subject.head = members.read(info)
    elif rest == "receipt.json":
        item.receipt = members.read(info)
    elif rest in _ORDER_FILES:
        data = members.read(info)
        if rest == "order/document":
            item.order_document = data
        elif rest == "order/salt":
            item.order_salt = data
        else:
            _order(item).head = data
    elif (indexed := _INDEXED.fullmatch(rest)) is not None:
        subject = _order(item) if indexed.group(1) else item.subject
        folder = subject.events if indexed.group(2) == "events" else subject.proofs
        folder[int(indexed.group(3))] = members.read(info)
    else:
        return False
    return True


def _order(item: ItemMembers) -> SubjectMembers:
    if item.order is None:
        item.order = SubjectMembers()
    return item.order


def _check_item(evidence_id: str, item: ItemMembers, index: BundleIndex) -> None:
    """Each item has what the layout requires, and every event has its proof."""
    folder = f"items/{evidence_id}/"
    for name, present in (("manifest", item.manifest), ("head", item.subject.head)):
        if present is None:
            raise ArchiveError(f"{folder}{name} is missing")
    _check_subject(folder, item.subject)
    if item.order is not None or item.order_document is not None or item.order_salt is not None:
        order = item.order or SubjectMembers()
        if item.order_document is None or item.order_salt is None or order.head is None:
            raise ArchiveError(f"{folder}order/ needs its document, its salt and its head")
        _check_subject(folder + "order/", order)
    if item.content is not None and not index.with_content:
        raise ArchiveError(f"{folder}content is there, but bundle.json says with_content false")


def _check_subject(folder: str, subject: SubjectMembers) -> None:
    if not subject.events:
        raise ArchiveError(f"{folder}events/ holds no event")
    for index in sorted(subject.events.keys() ^ subject.proofs.keys()):
        missing = "proofs" if index in subject.events else "events"
        raise ArchiveError(f"{folder}{missing}/{index:020d} is missing (event {index})")


def _check_pair(by_name: dict[str, zipfile.ZipInfo], known_checkpoint: bool) -> None:
    present = [name for name in (KNOWN_CHECKPOINT, CONSISTENCY) if name in by_name]
    if known_checkpoint and len(present) != 2:
        raise ArchiveError("bundle.json says known_checkpoint, but a member of it is missing")
    if not known_checkpoint and present:
        raise ArchiveError(f"{present[0]} is there, but bundle.json says known_checkpoint false")
