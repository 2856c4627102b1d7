"""The log's side of witnessing (C2SP tlog-witness): send checkpoints, keep cosignatures.

Each configured witness (``CUSTOS_WITNESSES``: its URL prefix and its ``cosignature/v1`` key)
is sent the log's newest kept checkpoint with ``POST <prefix>/add-checkpoint``: ``old`` is
the size the log believes the witness holds (0 at first), then the consistency proof from
that size, an empty line and the checkpoint. A 409 answer carries the witness's own size: the
log takes it and asks again at once, with the proof from there. A cosignature that verifies
against the configured key is kept in the object store, at ``cosignatures/<size>/<key ID>``,
and from then on the checkpoint is served (``GET /v1/log/checkpoint``) and exported (every
bundle's ``checkpoint`` and tlog-proofs) with it.

Each witness has its own :class:`WitnessClient`, and the service runs each in a thread of its
own (service/witnessing.py) that looks once a second: a witness that is down, slow or
refusing delays nothing but its own cosignature, and is sent at most the newest checkpoint
once a second.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from custody.interfaces import KeptCheckpoint, ObjectStore
from custody.ledger import Ledger
from custody.note import MalformedNote, Note
from custody.verify.cosignature import CosignatureVerifier

__all__ = [
    "Cosignatures",
    "Post",
    "WitnessClient",
    "WitnessEndpoint",
    "parse_witness",
]

log = logging.getLogger("custos.witnessing")

Post = Callable[[str, bytes], tuple[int, str, bytes]]
"""Send a POST to a URL with a body; the status, content type and body of the answer.
Raises OSError when the witness cannot be reached."""

_SIZE = re.compile(rb"([0-9]{1,20})\n")
PREFIX = "cosignatures/"


@dataclass(frozen=True)
class WitnessEndpoint:
    """A configured witness: where it listens, and the key its cosignatures must verify with."""

    url: str
    key: CosignatureVerifier

    @property
    def ident(self) -> str:
        return f"{self.key.name}+{self.key.key_hash.hex()}"


def parse_witness(entry: str) -> WitnessEndpoint:
    """``<URL prefix> <witness key>``; ValueError says what is wrong."""
    parts = entry.split()
    if len(parts) != 2:
        raise ValueError(f"a witness is '<URL prefix> <witness key>', not {entry!r}")
    url, key = parts
    split = urlsplit(url)
    if split.scheme not in ("http", "https") or not split.netloc or split.query:
        raise ValueError(f"a witness's URL prefix is http(s)://host[:port][/path], not {url!r}")
    try:
        return WitnessEndpoint(url.rstrip("/"), CosignatureVerifier.from_key(key))
    except MalformedNote as exc:
        raise ValueError(f"{key!r} is not a witness key: {exc}") from None


class Cosignatures:
    """The witnesses' cosignatures the log keeps, by checkpoint size."""

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    def keep(self, size: int, witness: WitnessEndpoint, line: bytes) -> None:
        key = f"{PREFIX}{size}/{witness.key.key_hash.hex()}"
        if not self.objects.exists(key):
            self.objects.put(key, line)

    def cosigned(self, kept: KeptCheckpoint) -> bytes:
        """The checkpoint's note with every cosignature kept for it, in key ID order."""
        lines = [
            self.objects.get(key) for key in sorted(self.objects.keys(f"{PREFIX}{kept.size}/"))
        ]
        return kept.note + b"".join(lines)


class WitnessClient:
    """Sends one witness the log's newest checkpoint; learns its size from a 409."""

    def __init__(
        self, ledger: Ledger, cosignatures: Cosignatures, witness: WitnessEndpoint, post: Post
    ) -> None:
        self.ledger = ledger
        self.cosignatures = cosignatures
        self.witness = witness
        self.post = post
        self.size = 0
        """The size the log believes the witness holds."""
        self.cosigned_size = 0
        """The largest checkpoint size this client has a cosignature of."""

    def submit(self) -> bool:
        """Send the newest checkpoint if it is newer than the last cosigned; True if the
        witness cosigned it. Raises OSError when the witness cannot be reached."""
        kept = self.ledger.checkpoint()  # signs a new one when the log has grown
        if kept.size == 0 or kept.size <= self.cosigned_size:
            return False
        for _ in range(2):  # once more after a 409 taught the witness's size
            status, content_type, body = self.post(
                f"{self.witness.url}/add-checkpoint", self._request(kept)
            )
            if status == 200:
                return self._keep(kept, body)
            if status == 409 and (size := _size(content_type, body)) is not None:
                if size > kept.size:
                    log.error(
                        "witness %s holds %d entries of this log, more than its %d: it saw "
                        "another history",
                        self.witness.ident,
                        size,
                        kept.size,
                    )
                    return False
                self.size = size
                continue
            log.warning(
                "witness %s refused the checkpoint of %d entries: %d %s",
                self.witness.ident,
                kept.size,
                status,
                body[:200].decode("utf-8", "replace").strip(),
            )
            return False
        return False

    def _request(self, kept: KeptCheckpoint) -> bytes:
        old = self.size if self.size <= kept.size else 0
        proof = self.ledger.consistency_proof(old, kept.size) if 0 < old < kept.size else []
        lines = "".join(base64.b64encode(h).decode("ascii") + "\n" for h in proof)
        return f"old {old}\n{lines}\n".encode("ascii") + kept.note

    def _keep(self, kept: KeptCheckpoint, body: bytes) -> bool:
        text = Note.from_bytes(kept.note).text
        try:
            lines = Note.from_bytes(kept.note + body).signatures[-len(body.splitlines()) :]
        except (MalformedNote, ValueError):
            lines = ()
        for signature in lines:
            if self.witness.key.verify(text, signature) is not None:
                self.cosignatures.keep(kept.size, self.witness, signature.line().encode())
                self.size = self.cosigned_size = kept.size
                return True
        log.warning(
            "witness %s answered 200 without a valid cosignature for %d entries",
            self.witness.ident,
            kept.size,
        )
        return False


def _size(content_type: str, body: bytes) -> int | None:
    if content_type.split(";")[0].strip() != "text/x.tlog.size":
        return None
    match = _SIZE.fullmatch(body)
    return int(match.group(1)) if match else None


def endpoints(entries: Sequence[str]) -> list[WitnessEndpoint]:
    return [parse_witness(entry) for entry in entries]
