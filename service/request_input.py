"""What every view reads from a request the same way: JSON bodies, list cursors, and streamed
uploads with their RFC 9530 digests; and how an ingested upload is answered."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flask_smorest
from flask import Request, Response, jsonify, request
from marshmallow import Schema, ValidationError, missing, validate
from webargs.flaskparser import FlaskParser

from custody.digests import http_digest, parse_http_digest
from custody.errors import BadRequest, FieldErrors, Invalid
from custody.intake import Ingested
from custody.json_codec import strict_json
from service.metrics import count_ingested
from service.problems import field_errors

# The largest index or sequence number a store holds (a signed 64-bit integer).
MAX_INDEX = 2**63 - 1
NO_NUL = validate.Regexp(r"\A[^\x00]*\Z", error="no NUL characters")


def load_body(schema: Schema, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` loaded by ``schema``; fields at fault are 422 naming each one, all at once."""
    try:
        loaded: dict[str, Any] = schema.load(data)
    except ValidationError as exc:
        raise FieldErrors(field_errors(exc.messages)) from None
    return loaded


def refuse_unstorable_text(body: Any) -> None:
    """Refuse what no stored text can hold: a NUL (PostgreSQL text cannot) or a lone surrogate
    (JSON may escape one, but RFC 7493 section 2.1 forbids it and UTF-8 cannot encode it).
    Iterative, so that a body nested as deep as the JSON parser allows is no deeper here."""
    pending: list[tuple[str, Any]] = [("", body)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, Mapping):
            for name, item in value.items():
                pending += [(where, name), (f"{where}.{name}" if where else str(name), item)]
        elif isinstance(value, list):
            pending += [(f"{where}[{i}]", item) for i, item in enumerate(value)]
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise BadRequest(f"{where or 'the body'} holds an unpaired surrogate") from None
            if "\x00" in value:
                raise Invalid(f"{where or 'the body'} holds a NUL character")


def decode_json_body(data: bytes) -> Any:
    """A JSON body, read by the verifier's strict decoder: a duplicate member name, a float,
    nesting deeper than its ``MAX_JSON_DEPTH``, text that is not UTF-8 or cannot be stored
    is 400 (a NUL is 422). The body's size was bounded before it was read
    (``service.body_limit``)."""
    try:
        body = strict_json(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8") from None
    except ValueError as exc:
        raise BadRequest(f"the body is not acceptable JSON: {exc}") from None
    refuse_unstorable_text(body)
    return body


def read_json_object(*, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object (any JSON media type, such as application/merge-patch+json),
    read by ``decode_json_body``; with ``optional``, an empty body is an empty object."""
    data = request.get_data(cache=True)
    if optional and not data:
        return {}
    if not request.is_json:
        raise BadRequest("the body must be a JSON object (Content-Type: application/json)")
    body = decode_json_body(data)
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


class StrictJsonParser(FlaskParser):
    """webargs' parser, reading JSON bodies with ``decode_json_body`` (webargs' own reader
    answers 500 to nesting too deep for Python's parser or to a number too long for int)."""

    def _raw_load_json(self, req: Request) -> Any:
        if not req.is_json:
            return missing
        return decode_json_body(req.get_data(cache=True))


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """flask-smorest's Blueprint, whose ``arguments`` read JSON bodies strictly."""

    ARGUMENTS_PARSER = StrictJsonParser()


def encode_cursor(position: int) -> str:
    """An opaque cursor for the list position (a ledger index or sequence number)."""
    return base64.urlsafe_b64encode(str(position).encode()).decode()


def decode_cursor(cursor: str | None) -> int | None:
    """The position a cursor from ``encode_cursor`` stands for; 400 for anything else."""
    if cursor is None:
        return None
    try:
        decoded = base64.urlsafe_b64decode(cursor.encode()).decode()
    except ValueError:
        raise BadRequest("malformed cursor") from None
    # Digits this server wrote, within what a store holds.
    if not (decoded.isascii() and decoded.isdigit()) or int(decoded) > MAX_INDEX:
        raise BadRequest("malformed cursor")
    return int(decoded)


# The longest name a name cursor may carry (names are single lines of at most 1,000
# characters).
MAX_CURSOR_NAME = 1_000


def encode_name_cursor(name: str) -> str:
    """An opaque cursor for a list ordered by a unique name: the last name shown."""
    return base64.urlsafe_b64encode(name.encode()).decode()


def decode_name_cursor(cursor: str | None) -> str | None:
    """The name a cursor from ``encode_name_cursor`` stands for; 400 for anything else."""
    if cursor is None:
        return None
    try:
        name = base64.urlsafe_b64decode(cursor.encode("ascii")).decode()
    except ValueError:  # not ASCII, not base64, or not UTF-8
        raise BadRequest("malformed cursor") from None
    if not name or len(name) > MAX_CURSOR_NAME or "\x00" in name:
        raise BadRequest("malformed cursor")
    return name


def page(
    items: Sequence[Any],
    limit: int,
    position: Any,
    encode: Callable[[Any], str] = encode_cursor,
) -> tuple[Sequence[Any], str | None]:
    """The first ``limit`` of ``items`` (fetched as ``limit + 1``) and the cursor of the next
    page, if there is one; ``position(item)`` is an item's list position, which ``encode``
    makes a cursor."""
    shown = items[:limit]
    more = len(items) > limit
    return shown, encode(position(shown[-1])) if more else None


# The OpenAPI description of the optional digest headers of an upload.
DIGEST_HEADERS = [
    {
        "in": "header",
        "name": name,
        "required": False,
        "schema": {"type": "string"},
        "description": "RFC 9530 digests of the body, e.g. sha-256=:<base64>:",
    }
    for name in ("Repr-Digest", "Content-Digest")
]
# The OpenAPI description of an upload's body: the raw bytes, streamed.
RAW_BODY = {
    "required": True,
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
}


def declared_digests() -> dict[str, str]:
    """The RFC 9530 digests the request declares for its body; headers that disagree on an
    algorithm are 422."""
    declared: dict[str, str] = {}
    for header in ("Repr-Digest", "Content-Digest"):
        if header in request.headers:
            for alg, value in parse_http_digest(request.headers[header]).items():
                if declared.get(alg, value) != value:
                    raise Invalid(f"{header} contradicts another declared {alg} digest")
                declared[alg] = value
    return declared


def require_readable_body() -> None:
    """Without Content-Length, only a server that ends a chunked body for us
    (``wsgi.input_terminated``) lets us read it; otherwise the body would read as empty."""
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if request.content_length is None and not (
        chunked and request.environ.get("wsgi.input_terminated")
    ):
        raise BadRequest("send Content-Length, or a chunked body to a server that supports it")


def ingested_response(ingested: Ingested) -> Response:
    """201 with the item, its ledger index and receipt, and the server's ``Repr-Digest``."""
    body = {
        **ingested.record.as_json(),
        "ledger_index": ingested.ledger_index,
        "receipt": json.loads(ingested.receipt.to_json()),
    }
    response = jsonify(body)
    response.status_code = 201
    response.headers["Repr-Digest"] = http_digest(ingested.record.digests)
    count_ingested(ingested.record.size or 0)
    return response
