"""The log API: checkpoints, keys, tiles, proofs and entries (C2SP tlog-tiles, RFC 9162).

Checkpoints, keys, hash tiles and proofs are public, so that anyone can witness that the
ledger only grows. Entries (the events themselves) need a token, and providers may not read
them: an event names subjects that a provider may not know exist.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from flask import Response, current_app
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from custody.errors import BadRequest, NotFound
from custody.ledger import TILE_WIDTH, Ledger
from service.auth import requires
from service.docs import bearer_auth, problem_responses
from service.request_input import MAX_INDEX

blp = Blueprint("log", __name__, url_prefix="/v1/log", description="The custody ledger")

_TILE_INDEX = re.compile(r"((?:x[0-9]{3}/)*)([0-9]{3})(?:\.p/([0-9]{1,3}))?")
_HEX32 = re.compile(r"^[0-9a-fA-F]{64}$")
# Stores keep indexes and sizes as signed 64-bit integers (SQL BIGINT), and Merkle levels
# below 64; nothing beyond exists in any log, and the database must not be asked for it.
_MAX_TILE_LEVEL = 7
# What the views that return bytes send, as the OpenAPI document describes it.
_TEXT = {"type": "string"}
_BYTES = {"type": "string", "format": "binary"}


def _ledger() -> Ledger:
    ledger: Ledger = current_app.extensions["custos"].ledger
    return ledger


def _text(body: bytes | str, content_type: str = "text/plain; charset=utf-8") -> Response:
    # content_type, not mimetype: werkzeug adds "; charset=utf-8" to a text mimetype, which
    # would name the charset twice.
    return Response(body, content_type=content_type)


def _immutable(body: bytes) -> Response:
    response = Response(body, mimetype="application/octet-stream")
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


def parse_tile_index(path: str) -> tuple[int, int]:
    """C2SP tlog-tiles ``<N>[.p/<W>]``: 3-digit groups, ``x`` before all but the last."""
    match = _TILE_INDEX.fullmatch(path)
    if not match:
        raise BadRequest(f"malformed tile index {path!r}")
    groups = [g[1:] for g in match.group(1).split("/") if g] + [match.group(2)]
    if len(groups) > 1 and groups[0] == "000":
        raise BadRequest(f"tile index {path!r} has a leading zero group")
    width = TILE_WIDTH
    if match.group(3) is not None:
        width = int(match.group(3))
        if not 1 <= width < TILE_WIDTH or match.group(3).startswith("0"):
            raise BadRequest("a partial tile's width is 1 to 255, without leading zeros")
    return int("".join(groups)), width


def _within_any_log(end: int, what: str) -> None:
    """NotFound for something that ends beyond the largest index a store can hold."""
    if end > MAX_INDEX:
        raise NotFound(f"no log has {what}")


def _tile(level: int, index: str) -> tuple[int, int]:
    """The tile's number and width, NotFound for a tile that no log can have."""
    number, width = parse_tile_index(index)
    if level > _MAX_TILE_LEVEL:
        raise NotFound(f"no log has tile level {level}")
    _within_any_log(number * TILE_WIDTH + width, f"tile {level}/{index}")
    return number, width


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


class InclusionQuery(Schema):
    index = fields.Integer(validate=validate.Range(min=0))
    leaf_hash = fields.String(validate=validate.Regexp(_HEX32, error="64 hex digits"))
    tree_size = fields.Integer(required=True, validate=validate.Range(min=0))

    @validates_schema
    def one_of_index_or_hash(self, data: dict[str, Any], **_: Any) -> None:
        if ("index" in data) == ("leaf_hash" in data):
            raise ValidationError("give exactly one of index and leaf_hash")


class InclusionProof(Schema):
    index = fields.Integer()
    tree_size = fields.Integer()
    hashes = fields.List(fields.String(), metadata={"description": "base64 SHA-256 hashes"})


ConsistencyQuery = Schema.from_dict(
    {
        "from": fields.Integer(required=True, validate=validate.Range(min=1)),
        "to": fields.Integer(required=True, validate=validate.Range(min=1)),
    },
    name="ConsistencyQuery",
)
ConsistencyProof = Schema.from_dict(
    {"from": fields.Integer(), "to": fields.Integer(), "hashes": fields.List(fields.String())},
    name="ConsistencyProof",
)


class ActorSchema(Schema):
    id = fields.String(required=True)
    role = fields.String(required=True)


class PrincipalNameSchema(Schema):
    """A principal as people read it: its display name (committed to in its
    ``principal.created`` or ``principal.named``), else its name."""

    id = fields.String(required=True)
    name = fields.String(required=True)


class SubjectSchema(Schema):
    kind = fields.String(required=True)
    id = fields.String(required=True)


class EventSchema(Schema):
    """A ledger event, version 1: its RFC 8785 encoding is the Merkle leaf."""

    v = fields.Integer(required=True, validate=validate.Equal(1))
    type = fields.String(required=True, metadata={"description": "<subject>.<verb>"})
    time = fields.DateTime(required=True)
    actor = fields.Nested(ActorSchema, required=True)
    subject = fields.Nested(SubjectSchema, required=True)
    prev = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "hex leaf hash of the subject's previous event"},
    )
    data = fields.Dict(required=True)


class CheckpointQuery(Schema):
    covering = fields.Integer(
        validate=validate.Range(min=0),
        metadata={"description": "an index the checkpoint's tree must include"},
    )


@blp.route("/checkpoint")
@blp.arguments(CheckpointQuery, location="query", error_status_code=400, as_kwargs=True)
@blp.response(200, _TEXT, content_type="text/plain", description="C2SP tlog-checkpoint note")
@problem_responses(blp, 404)
def checkpoint(covering: int | None = None) -> Response:
    """The latest signed checkpoint (signed anew once the log has grown and the checkpoint
    interval has passed), with the witnesses' cosignatures. With ``covering``, the latest if
    its tree includes that index, else the next one signed, which every writer waiting at
    that moment shares.

    The cosignature/v1 lines of the configured witnesses that have cosigned it so far
    follow the log's own signatures (C2SP tlog-cosignature)."""
    ledger = _ledger()
    if covering is not None and covering >= ledger.size():
        raise NotFound(f"the log has no entry {covering} yet")
    kept = ledger.checkpoint(covering)
    response = _text(current_app.extensions["custos"].cosignatures.cosigned(kept))
    response.headers["Cache-Control"] = "no-cache"
    return response


_SINCE = "Custos-Key-Since"


@blp.route("/key")
@blp.response(
    200,
    _TEXT,
    content_type="text/plain",
    description="C2SP signed-note keys, the current one first",
    headers={
        _SINCE: {
            "description": "the ledger index of the key.rotated event that made the first key "
            "current (0 when it is the log's first key); GET /v1/log/keys has every key's range",
            "schema": {"type": "integer", "minimum": 0},
        }
    },
)
def key() -> Response:
    """The service's verifier keys, newest first, one per line: the first is current, since
    the index in the Custos-Key-Since header."""
    ring = _ledger().keys
    lines = [v.verifier_key() for v in ring.verifiers]
    response = _text("".join(line + "\n" for line in lines))
    response.headers[_SINCE] = str(ring.periods()[-1].since or 0)
    return response


class _KeyPeriodSchema(Schema):
    key = fields.String(required=True, metadata={"description": "<name>+<hash>+<base64>"})
    since = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "index of the key.rotated that brought it in; null: the first"},
    )
    until = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "index of the key.rotated that retired it; null: current"},
    )
    current = fields.Boolean(required=True)


class _KeysSchema(Schema):
    origin = fields.String(required=True)
    keys = fields.List(fields.Nested(_KeyPeriodSchema), required=True)


@blp.route("/keys")
@blp.response(200, _KeysSchema, description="every key of the log, oldest first")
def keys() -> dict[str, Any]:
    """Every verifier key of the log with where it is valid: a key verifies the notes placed
    (by ledger index) from ``since`` to before ``until`` (docs/bundle.md, step 2)."""
    ring = _ledger().keys
    return {
        "origin": ring.origin,
        "keys": [{**p.as_json(), "current": p.until is None} for p in ring.periods()],
    }


@blp.route("/checkpoints/<int:size>")
@blp.response(200, _TEXT, content_type="text/plain", description="C2SP tlog-checkpoint note")
@problem_responses(blp, 404)
def kept_checkpoint(size: int) -> Response:
    """A checkpoint signed earlier at exactly this tree size."""
    _within_any_log(size, f"tree size {size}")
    return _text(_ledger().kept_checkpoint(size).note)


@blp.route("/tile/<int:level>/<path:index>")
@blp.response(200, _BYTES, content_type="application/octet-stream", description="the hashes")
@problem_responses(blp, 400, 404)
def hash_tile(level: int, index: str) -> Response:
    """A C2SP tlog-tiles hash tile (height 8)."""
    number, width = _tile(level, index)
    return _immutable(_ledger().hash_tile(level, number, width))


@blp.route("/tile/entries/<path:index>")
@blp.response(200, _BYTES, content_type="application/octet-stream", description="the entries")
@problem_responses(blp, 400, 404)
@bearer_auth(blp)
@requires(exclude=("provider",))
def entry_bundle(index: str) -> Response:
    """A C2SP tlog-tiles entry bundle: each event's exact leaf bytes, uint16-length-prefixed."""
    number, width = _tile(0, index)
    return _immutable(_ledger().entry_bundle(number, width))


@blp.route("/entries/<int:index>")
@blp.response(200, EventSchema, description="the event's exact leaf bytes")
@problem_responses(blp, 404)
@bearer_auth(blp)
@requires(exclude=("provider",))
def entry(index: int) -> Response:
    """The exact leaf bytes of one event (RFC 8785 JSON)."""
    _within_any_log(index + 1, f"entry {index}")
    return _text(_ledger().entry(index), "application/json")


@blp.route("/proofs/inclusion")
@blp.arguments(InclusionQuery, location="query", error_status_code=400, as_kwargs=True)
@blp.response(200, InclusionProof)
@problem_responses(blp, 404)
def inclusion_proof(tree_size: int, index: int | None = None, leaf_hash: str | None = None) -> Any:
    """RFC 9162 inclusion proof of one entry, by index or by leaf hash."""
    ledger = _ledger()
    if index is None:
        assert leaf_hash is not None
        index = ledger.index_of_leaf_hash(bytes.fromhex(leaf_hash))
        if index >= tree_size:
            raise BadRequest(f"that entry (index {index}) is not in a tree of size {tree_size}")
    hashes = ledger.inclusion_proof(index, tree_size)
    return {"index": index, "tree_size": tree_size, "hashes": _b64(hashes)}


@blp.route("/proofs/consistency")
@blp.arguments(ConsistencyQuery, location="query", error_status_code=400)
@blp.response(200, ConsistencyProof)
def consistency_proof(query: dict[str, int]) -> Any:
    """RFC 9162 proof that the tree of size ``from`` is a prefix of the tree of size ``to``."""
    size1, size2 = query["from"], query["to"]
    hashes = _ledger().consistency_proof(size1, size2)
    return {"from": size1, "to": size2, "hashes": _b64(hashes)}
