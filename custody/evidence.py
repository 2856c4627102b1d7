"""Evidence items: the record, its custody state and the rules that state imposes.

An item is digital (bytes ingested into the object store) or physical (a seized device or
document with no bytes, tracked by the same custody events). Its immutable description is
signed as a ``custos/manifest/v1`` note; its state (sealed, on hold, checked out, disposed)
changes only through custody events, each checked against the rules below inside the ledger's
append transaction, so two acts can never both pass a check that only one of them may.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from custody.acts import ACTS
from custody.errors import Conflict, Faults, FieldErrors, FieldFault, Forbidden
from custody.interfaces import AppendTransaction
from custody.note_types import MANIFEST_TYPE, json_note_text

if TYPE_CHECKING:
    from custody.cases import Scope

KINDS = ("digital", "physical")
_ID = re.compile(r"^ev_[0-9a-f]{16}$")

# Who may do what with evidence. The HTTP edge checks these too, to answer 403 early; the
# domain checks them for every caller, the local CLI included.
INTAKE_ROLES = ("examiner",)
ACT_ROLES = ("examiner", "approver")
READ_ROLES = ("examiner", "approver", "court", "admin", "authority")
# Exhibit bundles and CASE documents go to a court: the court and the examiner make them; an
# approver or an authority reads items but hands exhibits to a court through them.
EXPORT_ROLES = ("examiner", "court")


def require_role(role: str, allowed: Sequence[str], what: str) -> None:
    if role not in allowed:
        raise Forbidden(f"the {role} role may not {what}; {', '.join(allowed)} may")


def new_evidence_id() -> str:
    return "ev_" + secrets.token_hex(8)


def is_evidence_id(value: str) -> bool:
    return bool(_ID.match(value))


@dataclass(frozen=True)
class CustodyState:
    """What custody events have made of an item; flags combine (sealed and on hold)."""

    sealed: bool = False
    on_hold: bool = False
    checked_out_to: str | None = None
    disposed: bool = False
    # The number of the seal the item carries (none recorded for seals before migration 0010).
    seal: str | None = None
    # The principal a transfer names, until it confirms receipt (``evidence.received``).
    transfer_pending_to: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "sealed": self.sealed,
            "seal": self.seal,
            "on_hold": self.on_hold,
            "checked_out_to": self.checked_out_to,
            "transfer_pending_to": self.transfer_pending_to,
            "disposed": self.disposed,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CustodyState:
        return cls(
            sealed=bool(data.get("sealed")),
            on_hold=bool(data.get("on_hold")),
            checked_out_to=data.get("checked_out_to"),
            disposed=bool(data.get("disposed")),
            seal=data.get("seal"),
            transfer_pending_to=data.get("transfer_pending_to"),
        )

    def allowed_acts(self, kind: str) -> list[str]:
        """The custody events this state allows, in ``ACTS`` order."""
        if self.disposed:
            return []
        if self.transfer_pending_to is not None:
            # In transit: the receiver confirms receipt before anything but a note or a hold.
            pending = {
                "evidence.received": True,
                "evidence.noted": True,
                "evidence.hold_set": not self.on_hold,
            }
            return [act for act in ACTS if pending.get(act, False)]
        out = self.checked_out_to is not None
        allowed = {
            "evidence.transferred": not out,
            "evidence.received": False,
            "evidence.checked_out": not out and not self.sealed,
            "evidence.checked_in": out,
            "evidence.examined": not self.sealed,
            "evidence.noted": True,
            "evidence.sealed": not out and not self.sealed,
            "evidence.unsealed": self.sealed,
            "evidence.hold_set": not self.on_hold,
            "evidence.hold_released": self.on_hold,
            "evidence.disposed": not out and not self.on_hold,
        }
        return [act for act in ACTS if allowed[act]]

    def can_be_read(self, kind: str) -> bool:
        return kind == "digital" and not self.disposed

    def after(self, act: str, data: Mapping[str, Any], kind: str) -> CustodyState:
        """The state once ``act`` is recorded; Conflict (with the allowed acts) if refused."""
        allowed = self.allowed_acts(kind)
        if act not in allowed:
            why = "it is disposed" if self.disposed else f"its state is {self.describe()}"
            raise Conflict(f"{act} is not allowed: {why}", allowed)
        if act == "evidence.unsealed" and self.seal is not None and data.get("seal") != self.seal:
            raise FieldErrors([("seal", f"the item carries seal {self.seal}")])
        effects: dict[str, dict[str, Any]] = {
            "evidence.transferred": {"transfer_pending_to": data.get("to")},
            "evidence.received": {"transfer_pending_to": None},
            "evidence.checked_out": {"checked_out_to": data.get("to")},
            "evidence.checked_in": {"checked_out_to": None},
            "evidence.sealed": {"sealed": True, "seal": data.get("seal")},
            "evidence.unsealed": {"sealed": False, "seal": None},
            "evidence.hold_set": {"on_hold": True},
            "evidence.hold_released": {"on_hold": False},
            "evidence.disposed": {"disposed": True},
        }
        return replace(self, **effects.get(act, {}))

    def describe(self) -> str:
        parts = [
            name
            for name, on in (
                ("sealed", self.sealed),
                ("on hold", self.on_hold),
                (f"checked out to {self.checked_out_to}", self.checked_out_to is not None),
                (
                    f"in transfer to {self.transfer_pending_to}",
                    self.transfer_pending_to is not None,
                ),
                ("disposed", self.disposed),
            )
            if on
        ]
        return ", ".join(parts) or "in custody"


@dataclass(frozen=True)
class EvidenceRecord:
    """One evidence item. ``description`` holds everything the manifest signs."""

    id: str
    kind: str
    case: str
    exhibit: str
    description: Mapping[str, Any]
    received_at: str
    created_by: str
    ledger_index: int
    size: int | None = None
    digests: Mapping[str, str] = field(default_factory=dict)
    storage_key: str | None = None
    storage_version: str | None = None
    parent: str | None = None
    state: CustodyState = field(default_factory=CustodyState)

    def manifest_json(self) -> dict[str, Any]:
        """The signed description: everything about the item except its changing state."""
        return {
            "id": self.id,
            "kind": self.kind,
            "case": self.case,
            "exhibit": self.exhibit,
            "parent": self.parent,
            "size": self.size,
            "digests": dict(self.digests),
            "storage": {"key": self.storage_key, "version": self.storage_version},
            "received_at": self.received_at,
            "created_by": self.created_by,
            "ledger_index": self.ledger_index,
            **dict(self.description),
        }

    def matches(self, text: str) -> bool:
        """Whether ``text`` (in any letter case) is part of the item's case, exhibit,
        description or id, or of one of its digests (``sha256:HEX`` as the CLI writes it)."""
        wanted = search_text(text)
        shown = (self.case, self.exhibit, self.id, str(self.description.get("description", "")))
        return any(wanted in value.casefold() for value in (*shown, *self.digests.values()))

    def as_json(self) -> dict[str, Any]:
        """The record as the API and the CLI show it: state and allowed acts included."""
        return {
            **self.manifest_json(),
            "state": self.state.as_json(),
            "allowed_actions": self.state.allowed_acts(self.kind),
        }


_DIGEST_TEXT = re.compile(r"^(sha256|sha512|sha3_256|sha1|md5):([0-9a-fA-F]+)$")


def search_text(text: str) -> str:
    """What a search for ``text`` looks for: without surrounding blanks, in folded case, and
    a digest written ``ALG:HEX`` as its hex alone."""
    wanted = text.strip()
    digest = _DIGEST_TEXT.match(wanted)
    return (digest.group(2) if digest else wanted).casefold()


def manifest_text(record: EvidenceRecord) -> str:
    """The ``custos/manifest/v1`` note text: the type line, then the record as RFC 8785 JSON."""
    return json_note_text(MANIFEST_TYPE, record.manifest_json())


def manifest_key(evidence_id: str) -> str:
    return f"manifests/{evidence_id}"


def blob_key(sha256_hex: str) -> str:
    return f"blobs/sha256/{sha256_hex}"


# The description fields accepted at intake, beyond case, exhibit and kind.
DESCRIPTION_FIELDS = ("description", "media_type", "acquisition", "authority")
ACQUISITION_FIELDS = (
    "tool",
    "tool_version",
    "device",
    "serial",
    "acquired_at",
    "acquired_by",
    "location",
    "digests",
)


def check_intake(metadata: Mapping[str, Any]) -> None:
    """Domain checks the HTTP schema cannot express; and that every text can be recorded
    (UTF-8 without NUL), before anything is stored. FieldErrors names every field at fault."""
    faults = Faults()
    if metadata.get("kind") not in KINDS:
        faults.note("kind", f"is one of {', '.join(KINDS)}")
    pending: list[tuple[str, Any]] = list(metadata.items())
    while pending:
        name, value = pending.pop(0)
        if isinstance(value, Mapping):
            pending.extend((f"{name}.{key}", item) for key, item in value.items())
        elif isinstance(value, str):
            faults.check(_check_recordable, name, value)
    faults.raise_any()


def _check_recordable(name: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise FieldFault(name, "is not text that can be recorded (not UTF-8)") from None
    if "\x00" in value:
        raise FieldFault(name, "holds a NUL character")


def recordable_file_name(name: str) -> str:
    """A file name as text that can be recorded: a name that is not UTF-8 (Python holds its
    bytes as lone surrogates, PEP 383) has each such byte written as ``\\xNN``, so the raw
    bytes can be read back from the escape."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class CommittedText:
    """The free text of an act (an examination's findings, a note) and the salt of the
    commitment its event carries, kept beside the record, by the event's ledger index."""

    ledger_index: int
    salt: bytes
    text: bytes


@dataclass(frozen=True)
class UploadSession:
    """A digital item announced but not yet received: no record, no event, until it is."""

    id: str
    metadata: Mapping[str, Any]
    created_by: str
    created_at: str
    expires_at: str


class EvidenceStore(Protocol):
    """Evidence records, upload sessions and committed documents; writes that go with a
    ledger event go through the ledger's append transaction."""

    def create_session(self, session: UploadSession) -> None: ...

    def session(self, evidence_id: str) -> UploadSession | None: ...

    def claim_session(self, evidence_id: str, now: str, stale_before: str) -> UploadSession:
        """Mark an open session as receiving; Conflict if it is receiving or done."""

    def touch_session(self, evidence_id: str, now: str, claimed: str) -> bool:
        """Mark the receiver that holds the claim made (or last marked) at ``claimed`` as
        alive at ``now``; False when the claim is no longer its own."""

    def release_session(self, evidence_id: str, claimed: str) -> None:
        """Open the session again, if the claim made (or last marked) at ``claimed`` is still
        the one it holds: a receiver never frees a claim another has taken over."""

    def purge_sessions(self, now: str) -> int: ...

    def insert(self, tx: AppendTransaction, record: EvidenceRecord) -> None:
        """Insert a record (and close its upload session, if any)."""

    def get(self, evidence_id: str, tx: AppendTransaction | None = None) -> EvidenceRecord | None:
        """A record; with ``tx``, read inside the append transaction."""

    def set_state(self, tx: AppendTransaction, evidence_id: str, state: CustodyState) -> None: ...

    def sharing_blob(self, tx: AppendTransaction, key: str) -> Sequence[EvidenceRecord]: ...

    def list(
        self,
        case: str | None,
        exhibit: str | None,
        limit: int,
        after: int | None,
        scope: Scope | None = None,
    ) -> Sequence[EvidenceRecord]:
        """Records by ledger index, after the cursor; with ``scope``, only those it covers."""

    def search(self, text: str, limit: int, scope: Scope) -> Sequence[EvidenceRecord]:
        """At most ``limit`` records ``scope`` covers that match ``text``
        (``EvidenceRecord.matches``), oldest first."""

    def newest(self, limit: int) -> Sequence[EvidenceRecord]:
        """The ``limit`` records recorded last, newest first."""

    def iter_all(self) -> Iterator[EvidenceRecord]:
        """Every record, in ledger order (read in batches, for scrubs of the whole store)."""

    def save_document(
        self, tx: AppendTransaction, evidence_id: str, ledger_index: int, salt: bytes, text: bytes
    ) -> None: ...

    def documents(self, evidence_id: str) -> Sequence[CommittedText]:
        """The item's committed texts, in ledger order."""
