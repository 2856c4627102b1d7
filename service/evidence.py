"""The evidence API: intake (physical items at once, digital ones by upload session),
custody acts, custody history, content with an access event, manifests and receipts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, BinaryIO, cast

from flask import Response, current_app, g, request, stream_with_context, url_for
from flask_smorest import Blueprint
from marshmallow import (
    EXCLUDE,
    INCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
)

from custody.acts import ACT_FIELDS, CHOICE, SEIZURE_FIELDS, ActField
from custody.bundle import EXPORT_ROLES
from custody.digests import DIGEST_SIZES, http_digest
from custody.errors import NotFound
from custody.events import indexed_event_json
from custody.evidence import (
    ACT_ROLES,
    INTAKE_ROLES,
    READ_ROLES,
    EvidenceRecord,
)
from custody.intake import RESPONDING_ROLES
from custody.principals import name_list
from service.auth import requires
from service.body_limit import streams_upload
from service.bundles import ZIP_RESPONSE, zip_response
from service.docs import bearer_auth, problem_responses
from service.log_api import EventSchema, InclusionProof, PrincipalNameSchema
from service.request_input import (
    DIGEST_HEADERS,
    NO_NUL,
    RAW_BODY,
    declared_digests,
    decode_cursor,
    ingested_response,
    load_body,
    page,
    read_json_object,
    require_readable_body,
)
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


def _text_field(spec: ActField, *, required: bool | None = None) -> fields.String:
    """The marshmallow field of one act or seizure field (``custody.acts``): the OpenAPI
    document shows it; the domain itself checks every value that arrives."""
    validators: list[Any] = [validate.Length(min=1, max=spec.max_length)]
    if spec.type == CHOICE:
        validators.append(validate.OneOf(spec.choices))
    return fields.String(
        required=spec.required if required is None else required,
        validate=validators,
        metadata={"description": spec.label},
    )


# A physical item's seizure (ISO/IEC 27037): every field is required for a physical item,
# which the domain checks, naming each one missing as ``seizure.<field>``.
SeizureSchema = Schema.from_dict(
    {f.name: _text_field(f, required=False) for f in SEIZURE_FIELDS}, name="SeizureSchema"
)


class IntakeSchema(Schema):
    class Meta:
        unknown = RAISE

    kind = fields.String(required=True, validate=validate.OneOf(["digital", "physical"]))
    case = fields.String(required=True, validate=[validate.Length(min=1, max=200), NO_NUL])
    exhibit = fields.String(required=True, validate=[validate.Length(min=1, max=200), NO_NUL])
    description = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    parent = fields.String(validate=validate.Regexp(r"^ev_[0-9a-f]{16}$"))
    media_type = fields.String(validate=validate.Length(max=200))
    authority = fields.String(
        validate=validate.Length(max=200), metadata={"description": "warrant or order reference"}
    )
    acquisition = fields.Nested(AcquisitionSchema)
    seizure = fields.Nested(
        SeizureSchema,
        metadata={
            "description": "physical items (required): where, when, by whom, under what "
            "authority the item was seized, and its packaging"
        },
    )


def _act_schema(act: str) -> type[Schema]:
    """The marshmallow schema of one act, from its fields in ``custody.acts``: the OpenAPI
    document shows it; the domain itself checks every act that arrives."""
    spec: dict[str, Any] = {f.name: _text_field(f) for f in ACT_FIELDS[act]}
    return Schema.from_dict(spec)


ACT_SCHEMAS: dict[str, type[Schema]] = {act: _act_schema(act) for act in ACT_FIELDS}


class ActSchema(Schema):
    """A custody act: ``type`` plus that type's fields (see the README)."""

    class Meta:
        unknown = EXCLUDE

    type = fields.String(required=True, validate=validate.OneOf(list(ACT_SCHEMAS)))


def _act_body(act: str) -> type[Schema]:
    """The body of one custody act, as the OpenAPI document describes it."""
    spec: dict[str, Any] = {
        "type": fields.String(required=True, validate=validate.Equal(act)),
        **ACT_SCHEMAS[act]().fields,
    }
    return Schema.from_dict(spec, name=act.split(".")[1].title().replace("_", "") + "Act")


class ListQuery(Schema):
    case = fields.String(validate=NO_NUL)
    exhibit = fields.String(validate=NO_NUL)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String()


class ContentQuery(Schema):
    purpose = fields.String(required=True, validate=validate.Length(min=1, max=500))


# The views return what custody builds, as JSON; these schemas document it (through
# ``alt_response``) and never serialise it, so nothing the record carries is dropped.
class StateSchema(Schema):
    sealed = fields.Boolean(required=True)
    seal = fields.String(
        required=True, allow_none=True, metadata={"description": "the seal the item carries"}
    )
    on_hold = fields.Boolean(required=True)
    checked_out_to = fields.String(required=True, allow_none=True)
    transfer_pending_to = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "the custodian (principal id) yet to confirm receipt"},
    )
    disposed = fields.Boolean(required=True)


class StorageSchema(Schema):
    key = fields.String(required=True, allow_none=True)
    version = fields.String(required=True, allow_none=True)


class EvidenceSchema(Schema):
    """An item: the fields its manifest signs (those given at intake too), then its state."""

    class Meta:
        unknown = INCLUDE

    id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["digital", "physical"]))
    case = fields.String(required=True)
    exhibit = fields.String(required=True)
    parent = fields.String(required=True, allow_none=True)
    size = fields.Integer(required=True, allow_none=True)
    digests = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    storage = fields.Nested(StorageSchema, required=True)
    received_at = fields.DateTime(required=True)
    created_by = fields.String(required=True)
    ledger_index = fields.Integer(required=True)
    description = fields.String()
    media_type = fields.String()
    authority = fields.String()
    acquisition = fields.Nested(AcquisitionSchema)
    seizure = fields.Nested(SeizureSchema)
    state = fields.Nested(StateSchema, required=True)
    allowed_actions = fields.List(fields.String(), required=True)


class UploadSessionSchema(Schema):
    id = fields.String(required=True)
    upload = fields.String(required=True, metadata={"description": "where to PUT the bytes"})
    expires_at = fields.DateTime(required=True)


class ReceiptBundleSchema(Schema):
    """A receipt with its proof, for ``custody.verify`` to check offline."""

    format = fields.String(required=True)
    receipt = fields.String(required=True, metadata={"description": "signed note"})
    checkpoint = fields.String(required=True, metadata={"description": "signed note"})
    leaf = fields.String(required=True, metadata={"description": "base64 leaf bytes"})
    inclusion_proof = fields.Nested(InclusionProof, required=True)


class IngestedSchema(EvidenceSchema):
    receipt = fields.Nested(ReceiptBundleSchema, required=True)


class IndexedEventSchema(EventSchema):
    index = fields.Integer(required=True)


class ActRecordedSchema(EvidenceSchema):
    event = fields.Nested(IndexedEventSchema, required=True)


class EvidencePageSchema(Schema):
    items = fields.List(fields.Nested(EvidenceSchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class CustodySchema(Schema):
    id = fields.String(required=True)
    events = fields.List(fields.Nested(IndexedEventSchema), required=True)
    names = fields.List(
        fields.Nested(PrincipalNameSchema),
        required=True,
        metadata={"description": "each principal the events name, as people read it"},
    )


def _record(evidence_id: str) -> EvidenceRecord:
    """The item, if it is in the caller's cases; to anyone else it does not exist (404)."""
    return _deployment().handling.get(evidence_id, g.principal.actor)


def load_intake(data: Mapping[str, Any]) -> dict[str, Any]:
    """Intake metadata, validated: the one check the API and the local CLI share."""
    metadata = load_body(IntakeSchema(), data)
    acquisition = metadata.get("acquisition", {})
    if "acquired_at" in acquisition:
        acquisition["acquired_at"] = acquisition["acquired_at"].isoformat()
    return metadata


@blp.route("", methods=["POST"])
@blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": IntakeSchema}}})
@blp.alt_response(
    201,
    schema={"oneOf": [EvidenceSchema, UploadSessionSchema]},
    description="the physical item recorded, or the digital item's upload session",
    success=True,
)
@problem_responses(blp, 400, 409, 422)
@bearer_auth(blp)
@requires(*INTAKE)
def intake() -> tuple[dict[str, Any], int]:
    """Register a physical item at once, or open an upload session for a digital one."""
    metadata = load_intake(read_json_object())
    deployment = _deployment()
    if metadata["kind"] == "physical":
        appended = deployment.intake.register_physical(metadata, g.principal.actor)
        record = deployment.handling.get(appended.event.subject.id, g.principal.actor)
        return {**record.as_json(), "ledger_index": appended.index}, 201
    session = deployment.intake.open_session(metadata, g.principal.actor)
    upload = url_for("evidence.content", evidence_id=session.id)
    return {"id": session.id, "upload": upload, "expires_at": session.expires_at}, 201


@blp.route("/<evidence_id>/content", methods=["PUT"])
@streams_upload
@blp.doc(parameters=DIGEST_HEADERS, requestBody=RAW_BODY)
@blp.alt_response(
    201,
    schema=IngestedSchema,
    description="the item, with its receipt",
    headers={
        "Repr-Digest": {"schema": {"type": "string"}, "required": True},
        "Location": {"schema": {"type": "string"}, "required": True},
    },
    success=True,
)
@problem_responses(blp, 400, 404, 409, 413, 422)
@bearer_auth(blp)
@requires(*INTAKE)
def upload(evidence_id: str) -> Response:
    """Upload the bytes of an announced digital item (raw body; optional RFC 9530 digest)."""
    declared = declared_digests()
    require_readable_body()
    ingested = _deployment().intake.receive(
        evidence_id,
        cast(BinaryIO, request.stream),
        g.principal.actor,
        declared=declared,
        content_length=request.content_length,
    )
    response = ingested_response(ingested)
    response.headers["Location"] = url_for("evidence.show", evidence_id=evidence_id)
    return response


@blp.route("/<evidence_id>", methods=["GET"])
@blp.alt_response(200, schema=EvidenceSchema, description="the item", success=True)
@problem_responses(blp, 404)
@bearer_auth(blp)
@requires(*READERS)
def show(evidence_id: str) -> dict[str, Any]:
    """One item, its state and the acts its state allows."""
    return _record(evidence_id).as_json()


@blp.route("", methods=["GET"])
@blp.arguments(ListQuery, location="query", error_status_code=400, as_kwargs=True)
@blp.alt_response(200, schema=EvidencePageSchema, description="a page of items", success=True)
@bearer_auth(blp)
@requires(*READERS)
def list_items(
    limit: int, case: str | None = None, exhibit: str | None = None, cursor: str | None = None
) -> dict[str, Any]:
    """The items of the caller's cases (a court: what its grants give it), by case and
    exhibit, oldest first; follow ``next_cursor`` for more."""
    records = _deployment().handling.list(
        g.principal.actor, case, exhibit, limit + 1, decode_cursor(cursor)
    )
    shown, next_cursor = page(records, limit, lambda r: r.ledger_index)
    return {"items": [r.as_json() for r in shown], "next_cursor": next_cursor}


@blp.route("/<evidence_id>/custody", methods=["GET"])
@blp.alt_response(200, schema=CustodySchema, description="the item's events", success=True)
@problem_responses(blp, 404)
@bearer_auth(blp)
@requires(*READERS)
def custody(evidence_id: str) -> dict[str, Any]:
    """Every event of the item, in ledger order, with its ledger index."""
    record = _record(evidence_id)
    deployment = _deployment()
    entries = deployment.ledger.subject_entries(f"evidence:{record.id}")
    events = [indexed_event_json(e.index, e.leaf) for e in entries]
    names = deployment.principals.shown_names(e["actor"]["id"] for e in events)
    return {"id": record.id, "events": events, "names": name_list(names)}


@blp.route("/<evidence_id>/events", methods=["POST"])
@blp.doc(
    requestBody={
        "required": True,
        "content": {"application/json": {"schema": {"oneOf": [_act_body(a) for a in ACT_SCHEMAS]}}},
    }
)
@blp.alt_response(201, schema=ActRecordedSchema, description="the act recorded", success=True)
@problem_responses(blp, 400, 404, 409, 422)
@bearer_auth(blp)
@requires(*ACTORS)
def record_act(evidence_id: str) -> tuple[dict[str, Any], int]:
    """Record a custody act; 409 with ``allowed_actions`` when the item's state forbids it."""
    _deployment().handling.get(evidence_id, g.principal.actor)  # 404 before the body is read
    body = dict(read_json_object())
    act = load_body(ActSchema(), body)["type"]
    del body["type"]
    _record(evidence_id)
    recorded = _deployment().handling.record_act(evidence_id, act, body, g.principal.actor)
    return {
        **recorded.record.as_json(),
        "event": indexed_event_json(recorded.event.index, recorded.event.leaf),
    }, 201


@blp.route("/<evidence_id>/content", methods=["GET"])
@blp.arguments(ContentQuery, location="query", error_status_code=400, as_kwargs=True)
@blp.response(
    200,
    {"type": "string", "format": "binary"},
    content_type="application/octet-stream",
    description="the item's bytes",
    headers={
        "Repr-Digest": {"schema": {"type": "string"}, "required": True},
        "Custos-Access-Index": {
            "schema": {"type": "string"},
            "required": True,
            "description": "ledger index of the evidence.accessed event",
        },
    },
)
@problem_responses(blp, 404, 409)
@bearer_auth(blp)
@requires(*READERS)
def content(evidence_id: str, purpose: str) -> Response:
    """The item's bytes; ``evidence.accessed`` is recorded before the first byte goes out.

    An integrity failure mid-stream has no status code left to send: the exception aborts
    the response, so the client sees a short body, never a silent bad copy.
    """
    # A provider's response the enforcing State's review withholds is not read (EU Art 10(3)).
    _deployment().orders.check_released(_record(evidence_id).description.get("order"))
    record, access, chunks = _deployment().handling.read_content(
        evidence_id, g.principal.actor, purpose
    )
    response = Response(stream_with_context(chunks), mimetype="application/octet-stream")
    response.headers["Content-Length"] = str(record.size)
    response.headers["Repr-Digest"] = http_digest(record.digests)
    response.headers["Custos-Access-Index"] = str(access.index)
    return response


@blp.route("/<evidence_id>/manifest", methods=["GET"])
@blp.response(
    200, {"type": "string"}, content_type="text/plain", description="custos/manifest/v1 note"
)
@problem_responses(blp, 404)
@bearer_auth(blp)
@requires(*READERS)
def manifest(evidence_id: str) -> Response:
    """The signed ``custos/manifest/v1`` note."""
    record = _record(evidence_id)
    note = _deployment().intake.stored_manifest(record)
    return Response(note, content_type="text/plain; charset=utf-8")


@blp.route("/<evidence_id>/receipt", methods=["GET"])
@blp.alt_response(200, schema=ReceiptBundleSchema, description="the receipt bundle", success=True)
@problem_responses(blp, 400, 404)
@bearer_auth(blp)
@requires(*READERS, *RESPONDING_ROLES)
def receipt(evidence_id: str) -> dict[str, Any]:
    """The receipt bundle of an ingested item (as returned at upload), for offline checking.

    The provider whose response the item is may fetch it too; for any other provider the
    item does not exist (404)."""
    principal = g.principal
    bundle = _deployment().intake.receipt_for(evidence_id, principal.actor, principal.provider_id)
    result: dict[str, Any] = json.loads(bundle.to_json())
    return result


class BundleQuery(Schema):
    with_content = fields.Boolean(
        load_default=False,
        metadata={"description": "include the item's bytes (recorded as evidence.accessed)"},
    )


class DisclosedTextSchema(Schema):
    index = fields.Integer(required=True, metadata={"description": "its event's ledger index"})
    type = fields.String(required=True, metadata={"description": "evidence.examined or noted"})
    field = fields.String(required=True, metadata={"description": "findings or text"})
    text = fields.String(required=True)
    salt = fields.String(required=True, metadata={"description": "64 lowercase hex digits"})
    commitment = fields.String(
        required=True,
        metadata={"description": "the event's <field>_commitment: SHA-256(salt || text)"},
    )


class DisclosuresSchema(Schema):
    id = fields.String(required=True)
    disclosures = fields.List(fields.Nested(DisclosedTextSchema), required=True)


@blp.route("/<evidence_id>/disclosures", methods=["GET"])
@blp.alt_response(
    200, schema=DisclosuresSchema, description="the item's findings and notes", success=True
)
@problem_responses(blp, 403, 404)
@bearer_auth(blp)
@requires()
def disclosures(evidence_id: str) -> dict[str, Any]:
    """The item's examination findings and notes, each with the salt that opens its event's
    commitment: for examiners and courts only (custody.disclosure); 404 to a provider."""
    if g.principal.role == "provider":
        raise NotFound(f"no evidence {evidence_id}")
    record = _record(evidence_id)  # 404 outside the reader's cases; then 403 to other roles
    found = _deployment().disclosure.disclosed(record.id, g.principal.actor)
    return {"id": record.id, "disclosures": [text.as_json() for text in found]}


@blp.route("/<evidence_id>/bundle", methods=["GET"])
@blp.arguments(BundleQuery, location="query", error_status_code=400, as_kwargs=True)
@blp.response(200, {"type": "string", "format": "binary"}, **ZIP_RESPONSE)
@problem_responses(blp, 404, 409)
@bearer_auth(blp)
@requires(*EXPORT_ROLES)
def exhibit_bundle(evidence_id: str, with_content: bool) -> Response:
    """The item's exhibit bundle, for ``python -m custody.verify`` to check offline, with the
    service's own custody report (``report.html``) last."""
    record = _record(evidence_id)

    def export(out: BinaryIO) -> None:
        _deployment().bundles.export(
            [record.id], out, by=g.principal.actor, with_content=with_content
        )

    return zip_response(export, f"{record.id}.zip")
