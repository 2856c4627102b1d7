"""Exhibit bundles over HTTP: one or several items, optionally proving the log extends a
checkpoint the court kept earlier (``POST /v1/bundles``), and the one response every bundle
route shares."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import Any, BinaryIO

from flask import Response, current_app, g, request
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate
from werkzeug.wsgi import wrap_file

from custody.bundle import EXPORT_ROLES
from custody.errors import FieldErrors
from service.auth import requires
from service.docs import bearer_auth, problem_responses
from service.request_input import load_body, read_json_object
from storage.deployment import Deployment

blp = Blueprint("bundles", __name__, url_prefix="/v1/bundles", description="Exhibit bundles")

MAX_ITEMS = 1000
"""Items one request may bundle: a whole case's exhibits, and a bound on the work one asks."""

ZIP_RESPONSE: dict[str, Any] = {
    "content_type": "application/zip",
    "description": "the exhibit bundle (custos/exhibit/v3, docs/bundle.md)",
    "headers": {"Content-Disposition": {"schema": {"type": "string"}, "required": True}},
}


def zip_response(export: Callable[[BinaryIO], object], filename: str) -> Response:
    """The bundle ``export`` writes, as an attachment named ``filename``.

    It is written to a temporary file first, so that a refusal is a problem, never a
    truncated archive, and then streamed from it.
    """
    spool = tempfile.TemporaryFile()  # noqa: SIM115  (the response closes it once sent)
    try:
        export(spool)
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    response = Response(
        wrap_file(request.environ, spool), mimetype="application/zip", direct_passthrough=True
    )
    response.headers["Content-Length"] = str(size)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class BundleRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    evidence_ids = fields.List(
        fields.String(validate=validate.Length(min=1, max=100)),
        required=True,
        validate=validate.Length(min=1, max=MAX_ITEMS),
        metadata={"description": "the items to bundle, each once"},
    )
    known_checkpoint_size = fields.Integer(
        validate=validate.Range(min=1),
        metadata={
            "description": "the size of a checkpoint the court kept earlier: the bundle carries "
            "this log's checkpoint of that size and a consistency proof from it"
        },
    )
    with_content = fields.Boolean(
        load_default=False,
        metadata={"description": "include the items' bytes (each recorded as evidence.accessed)"},
    )


@blp.route("", methods=["POST"])
@blp.doc(
    requestBody={
        "required": True,
        "content": {"application/json": {"schema": BundleRequestSchema}},
    }
)
@blp.response(200, {"type": "string", "format": "binary"}, **ZIP_RESPONSE)
@problem_responses(blp, 400, 404, 409, 422)
@bearer_auth(blp)
@requires(*EXPORT_ROLES)
def create_bundle() -> Response:
    """The exhibit bundle of several items, as ``custos export`` writes it, for
    ``python -m custody.verify`` to check offline, with the service's own custody report last.

    With ``known_checkpoint_size`` the bundle proves that today's log extends the checkpoint
    this log signed at that size; the court verifies that with its own copy
    (``--known-checkpoint``), so a copy the operator changed since fails there.
    """
    body = load_body(BundleRequestSchema(), read_json_object())
    ids: list[str] = body["evidence_ids"]
    if len(set(ids)) != len(ids):
        raise FieldErrors([("evidence_ids", "name each item once")])
    deployment: Deployment = current_app.extensions["custos"]
    known = None
    if (size := body.get("known_checkpoint_size")) is not None:
        known = deployment.ledger.kept_checkpoint(size).note

    def export(out: BinaryIO) -> None:
        deployment.bundles.export(
            ids,
            out,
            by=g.principal.actor,
            with_content=body["with_content"],
            known_checkpoint=known,
        )

    name = f"{ids[0]}.zip" if len(ids) == 1 else f"exhibit-{len(ids)}-items.zip"
    return zip_response(export, name)
