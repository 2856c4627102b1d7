"""Taking items into a case from the pages: registering a physical item with its seizure,
and uploading an artifact from the browser.

Both go through the intake the API uses (``load_intake``, then ``Intake``): an upload's
bytes stream from the multipart form straight into the digest pipeline and the object store
(``service.pages.uploads``), hashed by the server, never spooled. The pages take files up to
``CUSTOS_PAGE_INGEST_MAX_BYTES``; for a larger one the page gives the ``custos ingest``
command that sends it with the same description.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from datetime import datetime
from typing import Any, BinaryIO, cast
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, g, make_response, render_template, request, url_for
from flask_wtf.csrf import ValidationError as CsrfInvalid
from flask_wtf.csrf import validate_csrf

from custody.acts import SEIZURE, SEIZURE_FIELDS, check_seizure
from custody.cases import Case
from custody.errors import BadRequest, FieldErrors, Forbidden, TooLarge
from custody.evidence import INTAKE_ROLES
from service.body_limit import streams_upload
from service.evidence import load_intake
from service.pages import display
from service.pages.examiner import redirect_to
from service.pages.sessions import deployment, signed_in
from service.pages.uploads import StreamedForm
from service.pages.zones import reader_zone

bp = Blueprint("examiner_intake", __name__, url_prefix="/examiner")
# Routes that check the CSRF token themselves, as they stream their body.
STREAMED = ("pages.examiner_intake.upload",)
FORM_OVERHEAD = 256 * 1024
DESCRIBED = ("exhibit", "description", "authority")
SEIZURE_NAMES = tuple(f"{SEIZURE}.{f.name}" for f in SEIZURE_FIELDS)
# What the upload form asks of an artifact's acquisition: what ``custos ingest`` takes too.
ACQUISITION = (
    ("acquisition.tool", "--tool", "Acquisition tool and version (optional)"),
    ("acquisition.acquired_by", "--acquired-by", "Acquired by (optional)"),
    ("acquisition.acquired_at", "--acquired-at", "Acquired at (optional)"),
)
TIMES = ("seizure.at", "acquisition.acquired_at")


def _case(case_id: str) -> Case:
    return deployment().cases.get(case_id, g.principal.actor)


def _metadata(values: Mapping[str, str], kind: str, found: Case) -> dict[str, Any]:
    """The intake's metadata from the form's filled-in fields (``seizure.at`` nested as the
    API nests it); a time given without its zone is read in the reader's zone."""
    metadata: dict[str, Any] = {"kind": kind, "case": found.reference}
    zone = reader_zone()
    for name, value in values.items():
        if not value:
            continue
        if name in TIMES:
            value = _in_zone(value, zone)
        part, dot, field = name.partition(".")
        if dot:
            metadata.setdefault(part, {})[field] = value
        else:
            metadata[name] = value
    return metadata


def _in_zone(value: str, zone: str) -> str:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value  # refused by the intake's checks, which say why
    if moment.utcoffset() is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.isoformat()


def _faults(refused: FieldErrors) -> dict[str, str]:
    return {name: why[:1].upper() + why[1:] for name, why in refused.errors}


def _form_page(
    template: str,
    found: Case,
    *,
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, str] | None = None,
    status: int = 200,
    command: str | None = None,
) -> Response:
    limit = deployment().config.page_ingest_max_bytes
    body = render_template(
        template,
        case=found,
        errors=errors or {},
        values=values or {},
        zone=reader_zone(),
        seizure_fields=[(f"{SEIZURE}.{f.name}", f) for f in SEIZURE_FIELDS],
        acquisition=ACQUISITION,
        upload_limit=display.size(limit),
        command=command or ingest_command(found, values or {}, None),
    )
    return make_response(body, status)


@bp.route("/cases/<case_id>/register", methods=["GET", "POST"])
@signed_in(*INTAKE_ROLES)
def register(case_id: str) -> Response:
    """Register a physical item with its seizure: where, when, by whom, under what
    authority, and how it was packaged."""
    found = _case(case_id)
    if request.method == "GET":
        return _form_page("examiner/register.html", found)
    values = {n: request.form.get(n, "").strip() for n in (*DESCRIBED, *SEIZURE_NAMES)}
    metadata = _metadata(values, "physical", found)
    errors: dict[str, str] = {}
    loaded: dict[str, Any] = {}
    try:
        loaded = load_intake(metadata)
    except FieldErrors as refused:
        errors.update(_faults(refused))
    try:
        check_seizure(metadata.get(SEIZURE, {}))
    except FieldErrors as refused:
        errors = {**_faults(refused), **errors}
    if not errors:
        try:
            appended = deployment().intake.register_physical(loaded, g.principal.actor)
        except FieldErrors as refused:
            errors = _faults(refused)
    if errors:
        return _form_page("examiner/register.html", found, errors=errors, values=values, status=422)
    target = url_for(
        "pages.examiner.item", evidence_id=appended.event.subject.id, done="registered"
    )
    return redirect_to(target)


@bp.route("/cases/<case_id>/upload", methods=["GET"])
@signed_in(*INTAKE_ROLES)
def upload_form(case_id: str) -> Response:
    """The form to upload an artifact into the case, with the command for larger files."""
    return _form_page("examiner/upload.html", _case(case_id))


def ingest_command(found: Case, values: Mapping[str, str], file_name: str | None) -> str:
    """The ``custos ingest`` command that sends the file with what the form describes."""
    config = deployment().config
    server = config.public_url or request.url_root.rstrip("/")
    words = ["custos", "ingest", file_name or "FILE", "--case", found.reference]
    words += ["--exhibit", values.get("exhibit") or "EXHIBIT"]
    if values.get("description"):
        words += ["--description", values["description"]]
    if values.get("authority"):
        words += ["--authority", values["authority"]]
    for name, option, _ in ACQUISITION:
        if values.get(name):
            words += [option, values[name]]
    words += ["--server", server]
    return " ".join(shlex.quote(word) for word in words)


@bp.route("/cases/<case_id>/upload", methods=["POST"])
@streams_upload
@signed_in(*INTAKE_ROLES)
def upload(case_id: str) -> Response:
    """An artifact from the plain form: its description, then the file, streamed into the
    intake and hashed as it arrives. The CSRF token is the form's first field, checked
    before anything is opened."""
    limit = deployment().config.page_ingest_max_bytes
    if request.content_length is None:
        raise BadRequest("the form must be sent with a Content-Length")
    body_limit = limit + FORM_OVERHEAD
    form = StreamedForm(
        cast(BinaryIO, request.stream), request.content_type or "", body_limit, limit
    )
    # The fields come before the file: reading them reads a few KiB however large it is.
    fields = form.read_fields()
    too_large = request.content_length > body_limit
    try:
        validate_csrf(fields.get("csrf_token"))
    except CsrfInvalid:
        if not too_large:
            form.finish_quietly()
        raise Forbidden("the form was not sent from this session's page") from None
    found = _case(case_id)
    names = (*DESCRIBED, *(name for name, _, _ in ACQUISITION))
    values = {n: fields.get(n, "").strip() for n in names}
    if too_large:
        return _too_large(found, values, form.filename, limit)
    errors: dict[str, str] = {}
    metadata = _metadata(values, "digital", found)
    media_type = form.file_headers.get("Content-Type")
    if media_type and media_type != "application/octet-stream":
        metadata["media_type"] = media_type[:200]
    loaded: dict[str, Any] = {}
    try:
        loaded = load_intake(metadata)
    except FieldErrors as refused:
        errors = _faults(refused)
    if not form.filename:
        errors["file"] = "Choose a file to upload."
    if errors:
        form.finish_quietly()
        return _form_page("examiner/upload.html", found, errors=errors, values=values, status=422)
    intake = deployment().intake
    session = intake.open_session(loaded, g.principal.actor)
    try:
        ingested = intake.receive(session.id, cast(BinaryIO, form), g.principal.actor)
    except TooLarge:
        form.finish_quietly()
        return _too_large(found, values, form.filename, limit)
    form.finish()
    target = url_for("pages.examiner.item", evidence_id=ingested.record.id, received=1)
    return redirect_to(target)


def _too_large(
    found: Case, values: Mapping[str, str], file_name: str | None, limit: int
) -> Response:
    """The form again (413), saying the file is larger than the pages take, with the command
    that sends it."""
    errors = {
        "file": f"The file is larger than {display.size(limit)}, the most this page takes. "
        "Send it with the command below."
    }
    command = ingest_command(found, values, file_name)
    return _form_page(
        "examiner/upload.html", found, errors=errors, values=values, status=413, command=command
    )
