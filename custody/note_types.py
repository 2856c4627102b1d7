"""The types of Custos's signed notes: the first line of each note's text.

A signature over one type of statement can never pass for another (ARCHITECTURE.md, Keys):
each note's text starts with its type and version. Checkpoints (c2sp.org/tlog-checkpoint)
start with the log's origin instead and are parsed by custody.checkpoint; receipts are
``key value`` lines (custody.receipt); the others are the type line, then the statement as
one line of RFC 8785 JSON (:func:`json_note_text`).

Standard library only: this module is part of the offline verifier.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from custody.json_codec import canonical_json

__all__ = [
    "HEAD_TYPE",
    "JSON_NOTE_TYPES",
    "MANIFEST_TYPE",
    "NOTICE_TYPE",
    "ORDER_TYPE",
    "RECEIPT_TYPE",
    "json_note_body",
    "json_note_text",
]

MANIFEST_TYPE = "custos/manifest/v1"
"""An evidence item's manifest: what was received, signed at intake."""
ORDER_TYPE = "custos/order/v1"
"""An order document as served on its provider."""
NOTICE_TYPE = "custos/notice/v1"
"""A notice to a provider of an order event it must act on."""
HEAD_TYPE = "custos/head/v1"
"""How many events a subject had, and which was last, as of a checkpoint (docs/bundle.md)."""
RECEIPT_TYPE = "custos/receipt/v1"
"""An ingest receipt (custody.receipt)."""

JSON_NOTE_TYPES = (MANIFEST_TYPE, ORDER_TYPE, NOTICE_TYPE, HEAD_TYPE)
"""The types whose statement is one line of canonical JSON."""


def json_note_text(note_type: str, body: Mapping[str, Any]) -> str:
    """The note text of a JSON statement: the type line, then ``body`` as RFC 8785 JSON."""
    return f"{note_type}\n{canonical_json(body).decode('utf-8')}\n"


def json_note_body(text: str, note_type: str) -> str | None:
    """The JSON line of a ``<note_type>\\n<JSON>\\n`` note text; None if the text is not
    of that type or not that shape. What the JSON holds is for the caller to check."""
    first, _, rest = text.partition("\n")
    if first != note_type or not rest.endswith("\n") or "\n" in rest[:-1]:
        return None
    return rest[:-1]
