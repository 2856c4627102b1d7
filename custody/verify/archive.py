"""Step (1) of the exhibit checklist: read a bundle's ZIP only if it is well formed and bounded.

The ZIP is read here, not with ``zipfile``, because a court's verifier must read it exactly as
every other reader would, and within a bound any PC has:

* the end record is the last thing in the file (no byte after it), the central directory ends
  where the end record (or its ZIP64 record) begins, and its size and member count are
  checked against :data:`MAX_DIRECTORY_BYTES` and :data:`MAX_MEMBERS` *before* it is read;
* the directory is then streamed, never held: each member's local header must agree with its
  central entry (name, flags, method, CRC-32 and sizes, or the data descriptor that carries
  them), and the members must follow one another from the first byte of the file to the
  directory, in directory order, with no gap and no overlap. So nothing comes before the first
  local header, no member hides outside the directory, and no two entries share bytes;
* names, kinds, sizes and the compression ratio are checked from the directory before any
  member is read, and no two names are equal, even ignoring case.

From ``custos/exhibit/v3`` on, a bundle also holds each item's disclosed findings and notes
(``items/<id>/disclosed/<index>``) and the events and names of the people and providers its
events mention (``parties/<id>/``); an older bundle's members of those names are outside its
layout, and not read.

Then, in a second pass over the directory, the members the layout of docs/bundle.md gives
meaning to are read, each inflated to exactly its declared size with its declared CRC-32,
except each item's ``content``, which is only streamed through the digests in step (7).
Members outside the layout are not read, and are counted (the first few named) so the output
can say so. Nothing is extracted and no name is ever used as a path.

Standard library only: this module is part of the offline verifier.
"""

from __future__ import annotations

import os
import re
import stat
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, NamedTuple

from custody.verify.errors import VerifierError
from custody.verify.formats import (
    BUNDLE_FORMAT_V1,
    KEY_FOLDER,
    BundleIndex,
    MalformedMember,
    parse_bundle_index,
)

__all__ = [
    "MAX_COMPRESSION_RATIO",
    "MAX_CONTENT_BYTES",
    "MAX_DIRECTORY_BYTES",
    "MAX_MEMBERS",
    "MAX_MEMBER_BYTES",
    "MAX_METADATA_BYTES",
    "PARTIES_FOLDER",
    "Archive",
    "ArchiveError",
    "Entry",
    "ItemMembers",
    "PartyMembers",
    "SubjectMembers",
    "open_archive",
]

MAX_MEMBERS = 200_000
"""Most members a bundle may have (an item with 10,000 events has about 20,000)."""
MAX_DIRECTORY_BYTES = 32 * 1024**2
"""Largest central directory, checked from the end record before it is read (200,000 entries
of names up to about 100 bytes). It is streamed in pieces of :data:`_CHUNK`, never held."""
MAX_MEMBER_BYTES = 16 * 1024**2
"""Largest member other than ``content``."""
MAX_METADATA_BYTES = 20 * 1024**2
"""Largest total of the members the verifier may read (all but ``content``, ``report.html``
and names outside the layout): what it holds in memory, with about three times as much again
for what it parses. A bundle of 10,000 events holds about 12 MiB, so this admits about 16,000;
the bound keeps the verifier under 100 MiB on a crafted archive."""
MAX_CONTENT_BYTES = 16 * 1024**4
"""Largest ``content`` member, and the largest total of them: they are streamed, never held."""
MAX_COMPRESSION_RATIO = 100
"""Largest ratio of a member's size to its compressed size (a bundle's members reach ~10)."""
MAX_NAME_BYTES = 256
MAX_UNREAD_NAMED = 10
"""How many members outside the layout the output names; the others are counted."""

CHECKPOINT = "checkpoint"
INDEX = "bundle.json"
KNOWN_CHECKPOINT = "known-checkpoint"
CONSISTENCY = "consistency"
REPORT = "report.html"
_TOP_LEVEL = frozenset({INDEX, CHECKPOINT, KNOWN_CHECKPOINT, CONSISTENCY})
_INDEXED = re.compile(r"(order/)?(events|proofs)/([0-9]{20})")
_ITEM_MEMBER = re.compile(r"items/(ev_[0-9a-f]{16})/(.+)")
_KEY_INDEXED = re.compile(r"log/key/(events|proofs)/([0-9]{20})")
_ORDER_FILES = frozenset({"order/document", "order/salt", "order/head"})
_DISCLOSED = re.compile(r"disclosed/([0-9]{20})")
PARTIES_FOLDER = "parties/"
"""Where a v3 bundle holds the principals and providers its events mention, one folder each."""
_PARTY_MEMBER = re.compile(
    r"parties/(pr_[0-9a-f]{16}|prv_[0-9a-f]{16})/(?:(head)|(events|proofs|names)/([0-9]{20}))"
)
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_PLAIN_NAME = re.compile(r"(?:[A-Za-z0-9_-][A-Za-z0-9_.-]*/)*[A-Za-z0-9_-][A-Za-z0-9_.-]*")
_MSDOS_DIRECTORY = 0x10
_WINDOWS_REPARSE_POINT = 0x400
_UNIX = 3
_ENCRYPTED = 0x1
_DATA_DESCRIPTOR = 0x8
_UTF8_NAME = 0x800
_STORED, _DEFLATED = 0, 8
_CHUNK = 1024**2
_WINDOW = 256 * 1024
_LIMIT16, _LIMIT32 = 0xFFFF, 0xFFFFFFFF

# APPNOTE 4.3.16, 4.3.15, 4.3.14, 4.3.12, 4.3.7 and 4.3.9.
_END = struct.Struct("<4sHHHHIIH")
_END_SIGNATURE = b"PK\x05\x06"
_LOCATOR = struct.Struct("<4sIQI")
_LOCATOR_SIGNATURE = b"PK\x06\x07"
_END64 = struct.Struct("<4sQHHIIQQQQ")
_END64_SIGNATURE = b"PK\x06\x06"
_CENTRAL = struct.Struct("<4sBBHHHHHIIIHHHHHII")
_CENTRAL_SIGNATURE = b"PK\x01\x02"
_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_DESCRIPTOR_SIGNATURE = b"PK\x07\x08"
_ZIP64_EXTRA = 0x0001


class ArchiveError(VerifierError):
    """The file is not a well-formed, bounded exhibit bundle; the message names the member."""


class Entry(NamedTuple):
    """One member, as its central entry and local header (which agree) describe it (a named
    tuple: one is made for every member, and a tuple is made fastest)."""

    name: str
    method: int
    crc: int
    compress_size: int
    file_size: int
    data_offset: int
    """Where its compressed bytes begin in the file."""


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
    content: Entry | None = None
    disclosed: dict[int, bytes] = field(default_factory=dict)
    """From v3: each disclosed finding or note, by the ledger index of its event."""


@dataclass
class PartyMembers:
    """What a v3 bundle holds for one principal (``pr_…``) or provider (``prv_…``): its
    events, proofs and head, and each display name it was given by the index of the event
    that commits to it."""

    subject: SubjectMembers = field(default_factory=SubjectMembers)
    names: dict[int, bytes] = field(default_factory=dict)


class _Source:
    """Positioned reads from the bundle's bytes or its file (never mapped: a hostile file of
    gigabytes costs only what is read of it)."""

    def __init__(self, source: bytes | str | os.PathLike[str]) -> None:
        self._bytes: bytes | None = None
        self._file: BinaryIO | None = None
        self._window, self._window_at = b"", 0
        if isinstance(source, bytes):
            self._bytes = source
            self.size = len(source)
        else:
            self._file = open(source, "rb")  # noqa: SIM115 (kept open until close())
            self.size = os.fstat(self._file.fileno()).st_size

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset`` (fewer only at the end of the file). A short
        read is served from a window of the file read ahead: members lie one after another,
        so one read serves the local headers and bytes of many."""
        if self._bytes is not None:
            return self._bytes[offset : offset + length]
        assert self._file is not None
        if length >= _WINDOW:
            return os.pread(self._file.fileno(), length, offset)
        at = offset - self._window_at
        if at < 0 or at + length > len(self._window):
            self._window = os.pread(self._file.fileno(), _WINDOW, offset)
            self._window_at, at = offset, 0
        return self._window[at : at + length]

    def exact(self, offset: int, length: int, what: str) -> bytes:
        data = self.read(offset, length)
        if len(data) != length:
            raise ArchiveError(f"{what} lies outside the file")
        return data

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class _Located(NamedTuple):
    """An entry and the span of the file it takes: its local header to its last byte."""

    entry: Entry
    start: int
    end: int
    raw: bytes | None
    """Its compressed bytes, read with its local header when the scan wanted them."""


@dataclass(frozen=True)
class _Directory:
    offset: int
    size: int
    count: int


@dataclass
class Archive:
    """An opened bundle whose directory passed every bound, with its members read."""

    source: _Source
    index: BundleIndex
    checkpoint: bytes
    items: dict[str, ItemMembers]
    key_history: SubjectMembers | None
    """The service key's history (subject ``key:service``): its head, events and proofs;
    None in a custos/exhibit/v1 bundle, written before bundles carried it."""
    known_checkpoint: bytes | None
    consistency: bytes | None
    member_count: int
    unread: list[str]
    """The first members outside the layout of docs/bundle.md: not read, not trusted."""
    unread_count: int = 0
    parties: dict[str, PartyMembers] = field(default_factory=dict)
    """From v3: the principals and providers the bundle names, by id."""

    def stream(self, entry: Entry) -> Iterator[bytes]:
        """Yield a member's bytes in chunks, checking its size and CRC-32 at the end;
        ArchiveError if it is damaged."""
        inflater = zlib.decompressobj(-zlib.MAX_WBITS) if entry.method == _DEFLATED else None
        crc = size = 0
        at, end = entry.data_offset, entry.data_offset + entry.compress_size
        while at < end:
            raw = self.source.exact(at, min(_CHUNK, end - at), f"the member {entry.name}")
            at += len(raw)
            while raw:
                if inflater is None:
                    chunk, raw = raw, b""
                else:
                    try:
                        chunk = inflater.decompress(raw, _CHUNK)
                    except zlib.error as exc:
                        raise ArchiveError(f"the member {entry.name} is damaged: {exc}") from None
                    raw = inflater.unconsumed_tail
                size += len(chunk)
                if size > entry.file_size:
                    raise ArchiveError(f"the member {entry.name} is larger than it declares")
                crc = zlib.crc32(chunk, crc)
                yield chunk
        if inflater is not None and not inflater.eof:
            raise ArchiveError(f"the member {entry.name} does not inflate to its declared size")
        if size != entry.file_size:
            raise ArchiveError(f"the member {entry.name} is not the size it declares")
        if crc != entry.crc:
            raise ArchiveError(
                f"the member {entry.name} is damaged: its CRC-32 is not the declared one"
            )

    def close(self) -> None:
        self.source.close()


def open_archive(source: bytes | str | os.PathLike[str]) -> Archive:
    """Open a bundle, check its structure and directory against every bound, then read its
    members. Raises ArchiveError naming the member and the bound it breaks."""
    try:
        opened = _Source(source)
    except OSError:
        raise
    try:
        return _read(opened)
    except BaseException:
        opened.close()
        raise


def _read(source: _Source) -> Archive:
    """One pass over the directory: every check, and each member the layout names read
    with its local header; ``bundle.json``, which says what the layout is, comes first."""
    directory = _find_directory(source)
    scan = _Scan(source)
    located = _entries(source, directory, scan)
    first = next(located, None)
    if first is None or first.entry.name != INDEX:
        raise ArchiveError(f"the archive's first member is not {INDEX}")
    scan.check(first)
    try:
        index = parse_bundle_index(_inflate(source, first.entry, first.raw))
    except MalformedMember as exc:
        raise ArchiveError(str(exc)) from None
    items: dict[str, ItemMembers] = {evidence_id: ItemMembers() for evidence_id in index.items}
    top: dict[str, bytes] = {}
    unread: list[str] = []
    unread_count = 0
    key_history = SubjectMembers()
    parties: dict[str, PartyMembers] = {}
    v3 = index.version >= 3
    for member in located:
        scan.check(member)
        entry, name = member.entry, member.entry.name
        if (
            v3
            and name.startswith(PARTIES_FOLDER)
            and (party := _PARTY_MEMBER.fullmatch(name)) is not None
        ):
            _place_party(parties.setdefault(party.group(1), PartyMembers()), party, source, member)
            continue
        if name in _TOP_LEVEL:
            top[name] = _inflate(source, entry, member.raw)
            continue
        if name == REPORT:
            continue
        if name.startswith(KEY_FOLDER):
            if name == KEY_FOLDER + "head":
                key_history.head = _inflate(source, entry, member.raw)
                continue
            if (key_member := _KEY_INDEXED.fullmatch(name)) is not None:
                folder = (
                    key_history.events if key_member.group(1) == "events" else key_history.proofs
                )
                folder[int(key_member.group(2))] = _inflate(source, entry, member.raw)
                continue
        match = _ITEM_MEMBER.fullmatch(name)
        item = items.get(match.group(1)) if match else None
        if match is None or item is None or not _place(source, member, match.group(2), item, v3):
            unread_count += 1
            if len(unread) < MAX_UNREAD_NAMED:
                unread.append(name)
    scan.finish(directory)
    if CHECKPOINT not in top:
        raise ArchiveError(f"the archive has no {CHECKPOINT}")
    for evidence_id, item in items.items():
        _check_item(evidence_id, item, index)
    for party_id, members in sorted(parties.items()):
        if members.subject.head is None:
            raise ArchiveError(f"{PARTIES_FOLDER}{party_id}/head is missing")
        _check_subject(f"{PARTIES_FOLDER}{party_id}/", members.subject)
    if index.format == BUNDLE_FORMAT_V1:
        if key_history.head is not None or key_history.events or key_history.proofs:
            raise ArchiveError(
                f"a {BUNDLE_FORMAT_V1} bundle carries no {KEY_FOLDER}, but this one does"
            )
    elif key_history.head is None:
        raise ArchiveError(f"{KEY_FOLDER}head is missing: the bundle lacks the log's key history")
    else:
        _check_subject(KEY_FOLDER, key_history, may_be_empty=True)
    _check_pair(top, index.known_checkpoint)
    return Archive(
        source=source,
        index=index,
        checkpoint=top[CHECKPOINT],
        items=items,
        key_history=None if index.format == BUNDLE_FORMAT_V1 else key_history,
        known_checkpoint=top.get(KNOWN_CHECKPOINT),
        consistency=top.get(CONSISTENCY),
        member_count=directory.count,
        unread=unread,
        unread_count=unread_count,
        parties=parties,
    )


def _reads(name: str) -> bool:
    """Whether the verifier reads (and holds) a member of this name, if the layout has it."""
    return (
        name in _TOP_LEVEL or name.startswith(("items/", KEY_FOLDER, PARTIES_FOLDER))
    ) and not name.endswith("/content")


def _find_directory(source: _Source) -> _Directory:
    """The end record at the very end of the file (and its ZIP64 record), bounded."""
    tail_length = min(source.size, _END.size + _LIMIT16)
    tail_start = source.size - tail_length
    tail = source.read(tail_start, tail_length)
    at = tail.rfind(_END_SIGNATURE)
    while at >= 0:
        fields = _END.unpack_from(tail, at) if len(tail) - at >= _END.size else None
        if fields is not None and at + _END.size + fields[7] == len(tail):
            break
        at = tail.rfind(_END_SIGNATURE, 0, at)
    else:
        raise ArchiveError(
            "the file is not a ZIP archive that ends with its end record (no end of central "
            "directory record, or bytes after it)"
        )
    _, disk, directory_disk, on_disk, count, size, offset, _ = fields
    end_at = tail_start + at
    if (disk, directory_disk) != (0, 0) or on_disk != count:
        raise ArchiveError("the archive spans several disks")
    directory_end = end_at
    if _LIMIT16 in (count, on_disk) or _LIMIT32 in (size, offset):
        locator_at = end_at - _LOCATOR.size
        if locator_at < 0:
            raise ArchiveError("the ZIP64 end record locator is missing")
        signature, disk64, end64_at, disks = _LOCATOR.unpack(
            source.exact(locator_at, _LOCATOR.size, "the ZIP64 locator")
        )
        if signature != _LOCATOR_SIGNATURE or disk64 != 0 or disks != 1:
            raise ArchiveError("the ZIP64 end record locator is missing or spans several disks")
        if end64_at + _END64.size != locator_at:
            raise ArchiveError("bytes lie between the ZIP64 end record and its locator")
        (signature, record_size, _, _, disk, directory_disk, on_disk, count, size, offset) = (
            _END64.unpack(source.exact(end64_at, _END64.size, "the ZIP64 end record"))
        )
        if signature != _END64_SIGNATURE or record_size != _END64.size - 12:
            raise ArchiveError("the ZIP64 end record is malformed")
        if (disk, directory_disk) != (0, 0) or on_disk != count:
            raise ArchiveError("the archive spans several disks")
        directory_end = end64_at
    if count > MAX_MEMBERS:
        raise ArchiveError(f"the archive has {count} members, more than {MAX_MEMBERS}")
    if size > MAX_DIRECTORY_BYTES:
        raise ArchiveError(
            f"the central directory is {size} bytes, more than {MAX_DIRECTORY_BYTES}: refused "
            "before it is read"
        )
    if offset + size != directory_end:
        raise ArchiveError(
            f"the central directory is not where the end record says (it would end at "
            f"{offset + size}, the end record begins at {directory_end}): bytes were added "
            "before the first local header, or between the directory and the end record"
        )
    return _Directory(offset, size, count)


def _entries(source: _Source, directory: _Directory, scan: _Scan) -> Iterator[_Located]:
    """Stream the central directory, each entry checked against its local header."""
    buffer, at, read_to = b"", 0, directory.offset
    end = directory.offset + directory.size
    for number in range(directory.count):
        need = _CENTRAL.size
        while True:
            if len(buffer) - at >= need:
                if need == _CENTRAL.size:
                    fields = _CENTRAL.unpack_from(buffer, at)
                    need = _CENTRAL.size + fields[11] + fields[12] + fields[13]
                    if len(buffer) - at >= need:
                        break
                    continue
                break
            if read_to >= end:
                raise ArchiveError(f"the central directory ends within entry {number}")
            buffer = buffer[at:] + source.read(read_to, min(_CHUNK, end - read_to))
            read_to, at = min(end, read_to + _CHUNK), 0
        record = buffer[at : at + need]
        at += need
        yield _entry(source, record, fields, number, scan)
    if at != len(buffer) or read_to != end:
        raise ArchiveError("the central directory holds more than its entries")


def _entry(
    source: _Source, record: bytes, fields: tuple[Any, ...], number: int, scan: _Scan
) -> _Located:
    (signature, _, system, _, flags, method, _, _, crc, compressed, size) = fields[:11]
    name_length, extra_length, _, disk, _, attributes, offset = fields[11:]
    if signature != _CENTRAL_SIGNATURE:
        raise ArchiveError(f"central directory entry {number} is malformed")
    raw_name = record[_CENTRAL.size : _CENTRAL.size + name_length]
    name = _decode_name(raw_name, flags)
    if extra_length:
        extra = record[_CENTRAL.size + name_length : _CENTRAL.size + name_length + extra_length]
        size, compressed, offset, disk = _zip64(extra, name, (size, compressed, offset), disk)
    if disk != 0:
        raise ArchiveError(f"the member {name} is on another disk")
    _check_name(name)
    _check_kind(name, system, attributes, flags, method, size, compressed)
    wanted = scan.admit(name, size, compressed)
    # One read for the local header, its name, (usually) its extra field, and the member's
    # bytes when they are to be read.
    head_length = _LOCAL.size + name_length + extra_length + 32
    local = source.read(offset, head_length + (compressed if wanted else 0))
    if (
        not flags & _DATA_DESCRIPTOR
        and not extra_length
        and local[: _LOCAL.size + name_length] == _LOCAL_SIGNATURE + record[6:32] + raw_name
    ):
        # The local header repeats the entry's version, flags, method, time, CRC-32, sizes and
        # name byte for byte, with no extra field: it agrees, as the checks below would find.
        data_offset = offset + _LOCAL.size + name_length
        data = local[_LOCAL.size + name_length : _LOCAL.size + name_length + compressed]
        if wanted and len(data) != compressed:
            raise ArchiveError(f"the member {name} lies outside the file")
        entry = Entry(name, method, crc, compressed, size, data_offset)
        return _Located(entry, offset, data_offset + compressed, data if wanted else None)
    if len(local) < _LOCAL.size:
        raise ArchiveError(f"the member {name} lies outside the file")
    (
        signature,
        _,
        local_flags,
        local_method,
        _,
        _,
        local_crc,
        local_compressed,
        local_size,
        local_name_length,
        local_extra_length,
    ) = _LOCAL.unpack_from(local)
    begin = offset + _LOCAL.size
    if len(local) < _LOCAL.size + local_name_length + local_extra_length:
        local = source.read(offset, _LOCAL.size + local_name_length + local_extra_length)
    local_name = local[_LOCAL.size : _LOCAL.size + local_name_length]
    local_extra = local[
        _LOCAL.size + local_name_length : _LOCAL.size + local_name_length + local_extra_length
    ]
    if len(local_extra) != local_extra_length:
        raise ArchiveError(f"the member {name} lies outside the file")
    if signature != _LOCAL_SIGNATURE or local_name != raw_name:
        raise ArchiveError(f"the member {name} has no local header of its own")
    if (local_flags, local_method) != (flags, method):
        raise ArchiveError(
            f"the member {name}'s local header and central entry disagree on its flags or method"
        )
    if local_extra_length:
        local_size, local_compressed, _, _ = _zip64(
            local_extra, name, (local_size, local_compressed, 0), 0
        )
    data_offset = begin + local_name_length + local_extra_length
    after = data_offset + compressed
    if flags & _DATA_DESCRIPTOR:
        descriptor = source.read(after, 24)
        if descriptor[:4] == _DESCRIPTOR_SIGNATURE:
            descriptor, skip = descriptor[4:], 4
        else:
            skip = 0
        wide = any(field_id == _ZIP64_EXTRA for field_id, _ in _extra_fields(local_extra, name))
        layout = "<IQQ" if wide else "<III"
        length = struct.calcsize(layout)
        if len(descriptor) < length:
            raise ArchiveError(f"the member {name}'s data descriptor lies outside the file")
        stated = struct.unpack_from(layout, descriptor)
        if stated != (crc, compressed, size) or (local_crc, local_compressed, local_size) not in (
            (0, 0, 0),
            (crc, compressed, size),
        ):
            raise ArchiveError(
                f"the member {name}'s data descriptor or local header disagrees with its "
                "central entry"
            )
        after += skip + length
    elif (local_crc, local_compressed, local_size) != (crc, compressed, size):
        raise ArchiveError(
            f"the member {name}'s local header and central entry disagree on its CRC-32 or sizes"
        )
    raw = None
    if wanted:
        at = data_offset - offset
        raw = local[at : at + compressed]
        if len(raw) != compressed:
            raw = source.exact(data_offset, compressed, f"the member {name}")
    entry = Entry(name, method, crc, compressed, size, data_offset)
    return _Located(entry, offset, after, raw)


def _decode_name(raw: bytes, flags: int) -> str:
    if raw.isascii():  # the same in UTF-8 and CP437, and decoded fastest as ASCII
        return raw.decode("ascii")
    try:
        return raw.decode("utf-8" if flags & _UTF8_NAME else "cp437")
    except UnicodeDecodeError:
        raise ArchiveError(f"the member name {raw!r} is not UTF-8") from None


def _extra_fields(extra: bytes, name: str) -> Iterator[tuple[int, bytes]]:
    at = 0
    while at < len(extra):
        if len(extra) - at < 4:
            raise ArchiveError(f"the member {name} has a malformed extra field")
        field_id, length = struct.unpack_from("<HH", extra, at)
        if at + 4 + length > len(extra):
            raise ArchiveError(f"the member {name} has a malformed extra field")
        yield field_id, extra[at + 4 : at + 4 + length]
        at += 4 + length


def _zip64(
    extra: bytes, name: str, values: tuple[int, int, int], disk: int
) -> tuple[int, int, int, int]:
    """The sizes, offset and disk, from the ZIP64 extra field where the header says so
    (APPNOTE 4.5.3: each value that is all ones follows there, in this order)."""
    size, compressed, offset = values
    for field_id, data in _extra_fields(extra, name):
        if field_id != _ZIP64_EXTRA:
            continue
        wide = [size == _LIMIT32, compressed == _LIMIT32, offset == _LIMIT32]
        needed = 8 * sum(wide) + (4 if disk == _LIMIT16 else 0)
        if len(data) < needed:
            raise ArchiveError(f"the member {name}'s ZIP64 extra field is too short")
        found = list(struct.unpack_from(f"<{sum(wide)}Q", data))
        size = found.pop(0) if wide[0] else size
        compressed = found.pop(0) if wide[1] else compressed
        offset = found.pop(0) if wide[2] else offset
        if disk == _LIMIT16:
            disk = struct.unpack_from("<I", data, 8 * sum(wide))[0]
        return size, compressed, offset, disk
    return size, compressed, offset, disk


class _Scan:
    """What the pass over the directory checks across entries: the bounds on sizes (before a
    member is read), unique names, and the tiling of the file: members follow one another
    in directory order from byte 0 to the directory."""

    def __init__(self, source: _Source) -> None:
        # Names are remembered by Python's keyed (per-process random) hash of their case-folded
        # form, not held: a collision could only refuse a sound archive, never pass a bad one.
        self.names: set[int] = set()
        self.metadata = 0
        self.content = 0
        self.expected = 0

    def admit(self, name: str, size: int, compressed: int) -> bool:
        """Check a member's sizes from its directory entry; whether it is to be read."""
        is_content = name.endswith("/content")
        limit = MAX_CONTENT_BYTES if is_content else MAX_MEMBER_BYTES
        if size > limit:
            raise ArchiveError(f"the member {name} is {size} bytes, more than its limit of {limit}")
        if size > MAX_COMPRESSION_RATIO * max(compressed, 1):
            raise ArchiveError(
                f"the member {name} inflates {compressed} bytes to {size}, more than "
                f"{MAX_COMPRESSION_RATIO} times: refused as a possible ZIP bomb"
            )
        if is_content:
            self.content += size
            if self.content > MAX_CONTENT_BYTES:
                raise ArchiveError("the content members add up to more bytes than allowed")
            return False
        if not _reads(name):
            return False
        self.metadata += size
        if self.metadata > MAX_METADATA_BYTES:
            raise ArchiveError(
                "the members the verifier reads (all but content and those outside the "
                f"layout) add up to more than {MAX_METADATA_BYTES} bytes"
            )
        return True

    def check(self, located: _Located) -> None:
        name = located.entry.name
        if located.start != self.expected:
            raise ArchiveError(
                f"bytes before the first local header (the first member starts at {located.start})"
                if self.expected == 0
                else f"the member {name} does not start where the member before it ends: "
                "members overlap, lie out of order, or bytes hide between them"
            )
        self.expected = located.end
        folded = hash(name.casefold())
        if folded in self.names:
            raise ArchiveError(
                f"the member name {name!r} appears twice (or differs from another only in case)"
            )
        self.names.add(folded)

    def finish(self, directory: _Directory) -> None:
        if self.expected != directory.offset:
            raise ArchiveError(
                "bytes lie between the last member and the central directory: a member "
                "outside the directory, or the remains of another archive"
            )


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


def _check_kind(
    name: str, system: int, attributes: int, flags: int, method: int, size: int, compressed: int
) -> None:
    """A plain file, unencrypted, stored or deflated: no link, directory or device."""
    if system == _UNIX:
        kind = stat.S_IFMT(attributes >> 16)
        if kind == stat.S_IFLNK:
            raise ArchiveError(f"the member {name} is a symbolic link")
        if kind not in (0, stat.S_IFREG):
            raise ArchiveError(f"the member {name} is not a regular file (mode {kind:o})")
    if attributes & (_MSDOS_DIRECTORY | _WINDOWS_REPARSE_POINT):
        raise ArchiveError(f"the member {name} is a directory or a link")
    if flags & _ENCRYPTED:
        raise ArchiveError(f"the member {name} is encrypted")
    if method not in (_STORED, _DEFLATED):
        raise ArchiveError(f"the member {name} uses compression method {method}")
    if method == _STORED and compressed != size:
        raise ArchiveError(f"the stored member {name} declares two different sizes")


def _inflate(source: _Source, entry: Entry, raw: bytes | None = None) -> bytes:
    """A whole member (within its checked size), from ``raw`` (its compressed bytes) if they
    were read already; ArchiveError if it is damaged."""
    name = entry.name
    if raw is None:
        raw = source.exact(entry.data_offset, entry.compress_size, f"the member {name}")
    if entry.method == _STORED:
        data = raw
    else:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            data = inflater.decompress(raw, entry.file_size + 1)
        except zlib.error as exc:
            raise ArchiveError(f"the member {name} is damaged: {exc}") from None
        if not inflater.eof:
            raise ArchiveError(f"the member {name} does not inflate to its declared size")
    if len(data) != entry.file_size:
        raise ArchiveError(f"the member {name} is not the size it declares")
    if zlib.crc32(data) != entry.crc:
        raise ArchiveError(f"the member {name} is damaged: its CRC-32 is not the declared one")
    return data


def _place_party(
    party: PartyMembers, match: re.Match[str], source: _Source, located: _Located
) -> None:
    """File a member of ``parties/<id>/``: its head, an event, a proof or a name."""
    data = _inflate(source, located.entry, located.raw)
    if match.group(2):
        party.subject.head = data
        return
    folder = {
        "events": party.subject.events,
        "proofs": party.subject.proofs,
        "names": party.names,
    }[match.group(3)]
    folder[int(match.group(4))] = data


def _place(
    source: _Source, located: _Located, rest: str, item: ItemMembers, v3: bool = False
) -> bool:
    """File a member of ``items/<id>/`` by its place in the layout; False if it has none."""
    entry = located.entry
    if (indexed := _INDEXED.fullmatch(rest)) is not None:  # most members: looked at first
        subject = _order(item) if indexed.group(1) else item.subject
        folder = subject.events if indexed.group(2) == "events" else subject.proofs
        folder[int(indexed.group(3))] = _inflate(source, entry, located.raw)
    elif v3 and (disclosed := _DISCLOSED.fullmatch(rest)) is not None:
        item.disclosed[int(disclosed.group(1))] = _inflate(source, entry, located.raw)
    elif rest == "content":
        item.content = entry
    elif rest == "manifest":
        item.manifest = _inflate(source, entry, located.raw)
    elif rest == "head":
        item.subject.head = _inflate(source, entry, located.raw)
    elif rest == "receipt.json":
        item.receipt = _inflate(source, entry, located.raw)
    elif rest in _ORDER_FILES:
        data = _inflate(source, entry, located.raw)
        if rest == "order/document":
            item.order_document = data
        elif rest == "order/salt":
            item.order_salt = data
        else:
            _order(item).head = data
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
    if item.disclosed and not index.disclosed:
        raise ArchiveError(f"{folder}disclosed/ is there, but bundle.json says disclosed false")


def _check_subject(folder: str, subject: SubjectMembers, *, may_be_empty: bool = False) -> None:
    if not subject.events and not may_be_empty:
        raise ArchiveError(f"{folder}events/ holds no event")
    for index in sorted(subject.events.keys() ^ subject.proofs.keys()):
        missing = "proofs" if index in subject.events else "events"
        raise ArchiveError(f"{folder}{missing}/{index:020d} is missing (event {index})")


def _check_pair(by_name: dict[str, bytes], known_checkpoint: bool) -> None:
    present = [name for name in (KNOWN_CHECKPOINT, CONSISTENCY) if name in by_name]
    if known_checkpoint and len(present) != 2:
        raise ArchiveError("bundle.json says known_checkpoint, but a member of it is missing")
    if not known_checkpoint and present:
        raise ArchiveError(f"{present[0]} is there, but bundle.json says known_checkpoint false")
