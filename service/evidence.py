"""The evidence API: intake (physical items at once, digital ones by upload session),
custody acts, custody history, content with an access event, manifests and receipts."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, BinaryIO, cast

from flask import Response, current_app, g, jsonify, request, stream_with_context, url_for
from flask_smorest import Blueprint
from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
)

from custody.digests import DIGEST_SIZES, http_digest, parse_http_digest
from custody.errors import BadRequest, Invalid, NotFound
from custody.events import indexed_event_json
from custody.evidence import (
    ACT_ROLES,
    INTAKE_ROLES,
    READ_ROLES,
    EvidenceRecord,
    is_evidence_id,
    manifest_key,
)
from service.auth import requires
from storage.deployment import Deployment

blp = Blueprint("evidence", __name__, url_prefix="/v1/evidence", description="Evidence items")

INTAKE, ACTORS, READERS = INTAKE_ROLES, ACT_ROLES, READ_ROLES
HEX = validate.Regexp(r"^[0-9a-f]+$", error="lowercase hex digits")
Text200 = fields.String(validate=validate.Length(min=1, max=200))


def _deployment() -> Deployment:
    deployment: Deployment = current_app.extensions["custos"]
    return deployment


def _check_digests(digests: Mapping[str, str]) -> None:
    for alg, value in digests.items():
        if len(value) != 2 * DIGEST_SIZES[alg]:
            raise ValidationError(f"a {alg} digest has {2 * DIGEST_SIZES[alg]} hex digits")


class AcquisitionSchema(Schema):
    class Meta:
        unknown = RAISE

    tool = fields.String(validate=validate.Length(max=200))
    tool_version = fields.String(validate=validate.Length(max=100))
    device = fields.String(validate=validate.Length(max=200))
    serial = fields.String(validate=validate.Length(max=200))
    acquired_at = fields.DateTime(format="iso")
    acquired_by = fields.String(validate=validate.Length(max=200))
    location = fields.String(validate=validate.Length(max=200))
    digests = fields.Dict(
        keys=fields.String(
            validate=validate.OneOf(["sha256", "sha512", "sha3_256", "sha1", "md5"])
        ),
        values=fields.String(validate=HEX),
        validate=_check_digests,
        metadata={"description": "the digests the acquisition tool recorded"},
    )


class IntakeSchema(Schema):
    class Meta:
        unknown = RAISE

    kind = fields.String(required=True, validate=validate.OneOf(["digital", "physical"]))
    case = fields.String(required=True, validate=validate.Length(min=1, max=200))
    exhibit = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    parent = fields.String(validate=validate.Regexp(r"^ev_[0-9a-f]{16}$"))
    media_type = fields.String(validate=validate.Length(max=200))
    authority = fields.String(
        validate=validate.Length(max=200), metadata={"description": "warrant or order reference"}
    )
    acquisition = fields.Nested(AcquisitionSchema)


def _required(*names: str, optional: tuple[str, ...] = ()) -> type[Schema]:
    spec: dict[str, Any] = {
        name: fields.String(required=True, validate=validate.Length(min=1, max=500))
        for name in names
    }
    spec.update({n: fields.String(validate=validate.Length(min=1, max=500)) for n in optional})
    return Schema.from_dict(spec)


ACT_SCHEMAS: dict[str, type[Schema]] = {
    "evidence.transferred": _required("from", "to", "location", "reason"),
    "evidence.checked_out": _required("to", "purpose", "authority"),
    "evidence.checked_in": _required("by", "condition"),
    "evidence.examined": Schema.from_dict(
        {
            "tool": fields.String(required=True, validate=validate.Length(min=1, max=200)),
            "version": fields.String(required=True, validate=validate.Length(min=1, max=100)),
            "purpose": fields.String(required=True, validate=validate.Length(min=1, max=500)),
            "findings": fields.String(
                required=True, validate=validate.Length(min=1, max=1_000_000)
            ),
        }
    ),
    "evidence.noted": Schema.from_dict(
        {"text": fields.String(required=True, validate=validate.Length(min=1, max=1_000_000))}
    ),
    "evidence.sealed": _required(optional=("seal", "reason")),
    "evidence.unsealed": _required("reason", optional=("seal",)),
    "evidence.hold_set": _required("authority", optional=("reason",)),
    "evidence.hold_released": _required("authority", optional=("reason",)),
    "evidence.disposed": _required("authority", "method"),
}


class ActSchema(Schema):
    """A custody act: ``type`` plus that type's fields (see the README)."""

    class Meta:
        unknown = EXCLUDE

    type = fields.String(required=True, validate=validate.OneOf(list(ACT_SCHEMAS)))


class ListQuery(Schema):
    case = fields.String()
    exhibit = fields.String()
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String()


class ContentQuery(Schema):
    purpose = fields.String(required=True, validate=validate.Length(min=1, max=500))


def _record(evidence_id: str) -> EvidenceRecord:
    if not is_evidence_id(evidence_id):
        raise NotFound(f"no evidence {evidence_id}")
    return _deployment().handling.get(evidence_id)


def _json_body() -> Mapping[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _load(schema: Schema, data: Mapping[str, Any]) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema.load(data)
    except ValidationError as exc:
        raise InvalidFields(exc.messages) from None
    return loaded


class InvalidFields(Invalid):
    """Schema validation failed; ``errors`` says which field and why."""

    def __init__(self, errors: Any) -> None:
        names = ", ".join(sorted(errors)) if isinstance(errors, dict) else "see errors"
        super().__init__(f"invalid fields: {names}")
        self.errors = errors


def load_intake(data: Mapping[str, Any]) -> dict[str, Any]:
    """Intake metadata, validated: the one check the API and the local CLI share."""
    metadata = _load(IntakeSchema(), data)
    acquisition = metadata.get("acquisition", {})
    if "acquired_at" in acquisition:
        acquisition["acquired_at"] = acquisition["acquired_at"].isoformat()
    return metadata


def load_act(act: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """A custody act's fields, validated: the one check the API and the local CLI share."""
    return _load(ACT_SCHEMAS[act](), data)


@blp.route("", methods=["POST"])
@blp.doc(requestBody={"content": {"application/json": {"schema": IntakeSchema}}})
@requires(*INTAKE)
def intake() -> tuple[dict[str, Any], int]:
    """Register a physical item at once, or open an upload session for a digital one."""
    metadata = load_intake(_json_body())
    deployment = _deployment()
    if metadata["kind"] == "physical":
        appended = deployment.intake.register_physical(metadata, g.principal.actor)
        record = deployment.handling.get(appended.event.subject.id)
        return {**record.as_json(), "ledger_index": appended.index}, 201
    session = deployment.intake.open_session(metadata, g.principal.actor)
    upload = url_for("evidence.content", evidence_id=session.id)
    return {"id": session.id, "upload": upload, "expires_at": session.expires_at}, 201


@blp.route("/<evidence_id>/content", methods=["PUT"])
@blp.doc(
    requestBody={
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    }
)
@requires(*INTAKE)
def upload(evidence_id: str) -> Response:
    """Upload the bytes of an announced digital item (raw body; optional RFC 9530 digest)."""
    declared: dict[str, str] = {}
    for header in ("Repr-Digest", "Content-Digest"):
        if header in request.headers:
            for alg, value in parse_http_digest(request.headers[header]).items():
                if declared.get(alg, value) != value:
                    raise Invalid(f"{header} contradicts another declared {alg} digest")
                declared[alg] = value
    # Without Content-Length, only a server that ends the chunked body for us
    # (``wsgi.input_terminated``) lets us read it; otherwise the body reads as empty.
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if request.content_length is None and not (
        chunked and request.environ.get("wsgi.input_terminated")
    ):
        raise BadRequest("send Content-Length, or a chunked body to a server that supports it")
    deployment = _deployment()
    ingested = deployment.intake.receive(
        evidence_id,
        cast(BinaryIO, request.stream),
        g.principal.actor,
        declared=declared,
        content_length=request.content_length,
    )
    body = {
        **ingested.record.as_json(),
        "ledger_index": ingested.ledger_index,
        "receipt": json.loads(ingested.receipt.to_json()),
    }
    response = jsonify(body)
    response.status_code = 201
    response.headers["Repr-Digest"] = http_digest(ingested.record.digests)
    response.headers["Location"] = url_for("evidence.show", evidence_id=evidence_id)
    return response


@blp.route("/<evidence_id>", methods=["GET"])
@requires(*READERS)
def show(evidence_id: str) -> dict[str, Any]:
    """One item, its state and the acts its state allows."""
    return _record(evidence_id).as_json()


@blp.route("", methods=["GET"])
@blp.arguments(ListQuery, location="query", error_status_code=400, as_kwargs=True)
@requires(*READERS)
def list_items(
    limit: int, case: str | None = None, exhibit: str | None = None, cursor: str | None = None
) -> dict[str, Any]:
    """Items by case and exhibit, oldest first; follow ``next_cursor`` for more."""
    after = None
    if cursor is not None:
        try:
            after = int(base64.urlsafe_b64decode(cursor.encode()).decode())
        except ValueError:
            raise BadRequest("malformed cursor") from None
    records = _deployment().evidence.list(case, exhibit, limit + 1, after)
    page, more = records[:limit], len(records) > limit
    next_cursor = (
        base64.urlsafe_b64encode(str(page[-1].ledger_index).encode()).decode() if more else None
    )
    return {"items": [r.as_json() for r in page], "next_cursor": next_cursor}


@blp.route("/<evidence_id>/custody", methods=["GET"])
@requires(*READERS)
def custody(evidence_id: str) -> dict[str, Any]:
    """Every event of the item, in ledger order, with its ledger index."""
    record = _record(evidence_id)
    entries = _deployment().ledger.subject_entries(f"evidence:{record.id}")
    return {"id": record.id, "events": [indexed_event_json(e.index, e.leaf) for e in entries]}


@blp.route("/<evidence_id>/events", methods=["POST"])
@blp.doc(requestBody={"content": {"application/json": {"schema": ActSchema}}})
@requires(*ACTORS)
def record_act(evidence_id: str) -> tuple[dict[str, Any], int]:
    """Record a custody act; 409 with ``allowed_actions`` when the item's state forbids it."""
    body = dict(_json_body())
    act = _load(ActSchema(), body)["type"]
    del body["type"]
    data = load_act(act, body)
    _record(evidence_id)
    recorded = _deployment().handling.record_act(evidence_id, act, data, g.principal.actor)
    return {
        **recorded.record.as_json(),
        "event": indexed_event_json(recorded.event.index, recorded.event.leaf),
    }, 201


@blp.route("/<evidence_id>/content", methods=["GET"])
@blp.arguments(ContentQuery, location="query", error_status_code=400, as_kwargs=True)
@requires(*READERS)
def content(evidence_id: str, purpose: str) -> Response:
    """The item's bytes; ``evidence.accessed`` is recorded before the first byte goes out.

    An integrity failure mid-stream has no status code left to send: the exception aborts
    the response, so the client sees a short body, never a silent bad copy.
    """
    record, access, chunks = _deployment().handling.read_content(
        evidence_id, g.principal.actor, purpose
    )
    response = Response(stream_with_context(chunks), mimetype="application/octet-stream")
    response.headers["Content-Length"] = str(record.size)
    response.headers["Repr-Digest"] = http_digest(record.digests)
    response.headers["Custos-Access-Index"] = str(access.index)
    return response


@blp.route("/<evidence_id>/manifest", methods=["GET"])
@requires(*READERS)
def manifest(evidence_id: str) -> Response:
    """The signed ``custos/manifest/v1`` note."""
    record = _record(evidence_id)
    note = _deployment().objects.get(manifest_key(record.id))
    return Response(note, mimetype="text/plain; charset=utf-8")


@blp.route("/<evidence_id>/receipt", methods=["GET"])
@requires(*READERS)
def receipt(evidence_id: str) -> dict[str, Any]:
    """The receipt bundle of an ingested item (as returned at upload), for offline checking."""
    record = _record(evidence_id)
    deployment = _deployment()
    leaf = deployment.ledger.entry(record.ledger_index)
    bundle = deployment.intake.receipt(record, leaf)
    result: dict[str, Any] = json.loads(bundle.to_json())
    return result
