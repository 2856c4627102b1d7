"""A witness (C2SP tlog-witness): cosigns a log's checkpoint only if it extends the last one.

Another agency, a bar association or a court runs it (``custos witness serve``). For each log
it follows (by origin, with the log's verifier keys) it keeps the newest checkpoint it
cosigned, in a file of its own written atomically (a temporary file, fsync, rename, fsync of
the folder) before it answers: a witness that restarts remembers, and never cosigns two
different histories of one log, nor an older checkpoint after a newer one.

``add_checkpoint`` takes the body of ``POST <prefix>/add-checkpoint``: ``old <size>``, the
consistency proof from that size (one base64 hash per line), an empty line, and the signed
checkpoint. It answers as the spec says: 200 with the cosignature line; 400 for a malformed
request or ``old`` beyond the checkpoint's size; 403 when no key of the log signed it; 404
for a log it does not follow; 409 (``text/x.tlog.size``, its own size) when ``old`` is not
the size it holds, or the checkpoint is of that size with another root; 422 when the proof
does not verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from custody import merkle
from custody.checkpoint import Checkpoint, MalformedCheckpoint, open_checkpoint
from custody.note import MalformedNote, Note, NoteVerificationError, NoteVerifier
from custody.verify.cosignature import CosignatureSigner

__all__ = ["SIZE_CONTENT_TYPE", "Answer", "Witness"]

SIZE_CONTENT_TYPE = "text/x.tlog.size"
MAX_BODY = 64 * 1024
"""Largest request body: a checkpoint and a proof of at most 64 hashes fit many times over."""


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, content type and body."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class _Latest:
    size: int
    root: bytes


class Witness:
    """Checks and cosigns checkpoints of the logs it follows, remembering each in ``state``."""

    def __init__(
        self,
        signer: CosignatureSigner,
        logs: Mapping[str, Sequence[NoteVerifier]],
        state: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signer = signer
        self.logs = {origin: list(keys) for origin, keys in logs.items()}
        self.state = state
        self.clock = clock
        self._lock = threading.Lock()
        state.mkdir(parents=True, exist_ok=True)

    def add_checkpoint(self, body: bytes) -> Answer:
        """Answer one ``add-checkpoint`` request (the module's docstring says how)."""
        if len(body) > MAX_BODY:
            return Answer(400, b"the request is too large\n")
        head, blank, note_bytes = body.partition(b"\n\n")
        try:
            lines = head.decode("ascii").split("\n")
            if not blank or not lines[0].startswith("old "):
                raise ValueError("the request is 'old N', the proof, an empty line, a checkpoint")
            old = _decimal(lines[0][len("old ") :])
            proof = [_hash(line) for line in lines[1:]]
            origin = Note.from_bytes(note_bytes).text.partition("\n")[0]
        except (ValueError, UnicodeDecodeError, MalformedNote) as exc:
            return Answer(400, f"malformed request: {exc}\n".encode())
        keys = self.logs.get(origin)
        if keys is None:
            return Answer(404, f"this witness does not follow the log {origin!r}\n".encode())
        try:
            checkpoint, note = open_checkpoint(note_bytes, keys, origin)
        except (NoteVerificationError, MalformedNote, MalformedCheckpoint) as exc:
            return Answer(403, f"not signed by a key of the log: {exc}\n".encode())
        if old > checkpoint.size:
            return Answer(400, f"old {old} is beyond the checkpoint's size\n".encode())
        with self._lock:  # one check-and-persist at a time: no two answers from one state
            latest = self._latest(origin)
            if old != latest.size:
                return _conflict(latest)
            if checkpoint.size == latest.size:
                if proof or checkpoint.root != latest.root:
                    return _conflict(latest)
            else:
                try:
                    if old == 0:  # from nothing: nothing to prove, and nothing may be sent
                        if proof:
                            raise merkle.InvalidProof("a proof from size 0 is empty")
                    else:
                        merkle.verify_consistency(
                            old, checkpoint.size, proof, latest.root, checkpoint.root
                        )
                except merkle.InvalidProof as exc:
                    return Answer(422, f"the consistency proof does not verify: {exc}\n".encode())
                self._persist(origin, checkpoint, note_bytes)
        line = self.signer.sign(note.text, int(self.clock())).line()
        return Answer(200, line.encode("utf-8"))

    def latest(self, origin: str) -> tuple[int, bytes]:
        """The size and root of the newest checkpoint of ``origin`` it cosigned."""
        latest = self._latest(origin)
        return latest.size, latest.root

    def _path(self, origin: str) -> Path:
        return self.state / (hashlib.sha256(origin.encode("utf-8")).hexdigest() + ".json")

    def _latest(self, origin: str) -> _Latest:
        try:
            saved = json.loads(self._path(origin).read_text("utf-8"))
        except FileNotFoundError:
            return _Latest(0, merkle.EMPTY_ROOT)
        return _Latest(saved["size"], base64.b64decode(saved["root"]))

    def _persist(self, origin: str, checkpoint: Checkpoint, note: bytes) -> None:
        path = self._path(origin)
        temp = path.with_suffix(".tmp")
        record = {
            "origin": origin,
            "size": checkpoint.size,
            "root": base64.b64encode(checkpoint.root).decode("ascii"),
            "checkpoint": note.decode("utf-8"),
        }
        with temp.open("w", encoding="utf-8") as file:
            json.dump(record, file, sort_keys=True)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
        folder = os.open(self.state, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _conflict(latest: _Latest) -> Answer:
    return Answer(409, f"{latest.size}\n".encode("ascii"), SIZE_CONTENT_TYPE)


def _decimal(value: str) -> int:
    if not value.isdigit() or (value != "0" and value.startswith("0")) or len(value) > 20:
        raise ValueError(f"{value!r} is not a size")
    return int(value)


def _hash(line: str) -> bytes:
    try:
        raw = base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a proof line is not base64") from None
    if len(raw) != merkle.HASH_SIZE:
        raise ValueError("a proof line is not a 32-byte hash")
    return raw
