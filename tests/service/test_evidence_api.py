"""Tests of the evidence API (service/evidence.py): intake, custody acts, content access,
authorization and listing, through the Flask test client."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from custody.acts import ACT_FIELDS, ACTS
from custody.audit import audit_ledger
from custody.verify.receipt import verify_receipt
from service import create_app
from storage.deployment import Deployment, initialise, open_deployment
from tests.conftest import FakeClock, Home, add_provider, bearer, make_config
from tests.factories import ACT_BODIES, CUSTODIAN, SEIZURE, in_case

DIGITAL = {"kind": "digital", "case": "CASE-1", "exhibit": "E-1", "description": "disk image"}
PHYSICAL = {
    "kind": "physical",
    "case": "CASE-1",
    "exhibit": "P-1",
    "description": "a phone",
    "seizure": SEIZURE,
}
CONTENT = b"acquired image bytes " * 5_000  # ~100 KB
MISSING_ID = "ev_0000000000000000"

REQUIRED: dict[str, tuple[str, ...]] = {
    "evidence.transferred": ("from", "to", "location", "reason"),
    "evidence.received": ("location", "seal_intact"),
    "evidence.checked_out": ("to", "purpose", "authority"),
    "evidence.checked_in": ("by", "condition", "location"),
    "evidence.examined": ("tool", "version", "purpose", "location", "findings"),
    "evidence.noted": ("text",),
    "evidence.sealed": ("seal",),
    "evidence.unsealed": ("reason", "seal"),
    "evidence.hold_set": ("authority",),
    "evidence.hold_released": ("authority",),
    "evidence.disposed": ("authority", "method"),
}
assert set(ACT_BODIES) == set(REQUIRED) == set(ACTS)


@dataclass
class Tokens:
    examiner: str
    other_examiner: str
    approver: str
    court: str
    provider: str
    operator: str


def add_tokens(home: Home) -> Tokens:
    principals = home.deployment.principals
    operator = principals.get("operator").actor

    def token(name: str, role: str, provider: str | None = None) -> str:
        return principals.add(name, role, operator, provider_id=provider)[1]

    isp = add_provider(home.deployment)

    tokens = Tokens(
        examiner=token("alice", "examiner"),
        other_examiner=token("bob", "examiner"),
        approver=token("judge", "approver"),
        court=token("clerk", "court"),
        provider=token("isp", "provider", isp.id),
        operator=home.operator_token,
    )
    # The cases of these tests, with the examiners and the approver in them, granted to the
    # court: each test here is about what happens within a case (test_case_authorization is
    # about who may reach it).
    for case in ("CASE-1", "A", "B"):
        in_case(home.deployment, case, "alice", "bob", "judge", "clerk")
    return tokens


@pytest.fixture
def tokens(home: Home) -> Tokens:
    return add_tokens(home)


@pytest.fixture
def examiner(tokens: Tokens) -> dict[str, str]:
    return bearer(tokens.examiner)


# -- helpers ---------------------------------------------------------------------------------


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def repr_digest(content: bytes, *algorithms: str) -> str:
    names = {"sha-256": "sha256", "sha-512": "sha512", "md5": "md5", "sha": "sha1"}
    return ", ".join(
        f"{name}=:{b64(hashlib.new(names[name], content).digest())}:" for name in algorithms
    )


def open_upload(client: FlaskClient, headers: dict[str, str], **metadata: str) -> str:
    response = client.post("/v1/evidence", json={**DIGITAL, **metadata}, headers=headers)
    assert response.status_code == 201, response.get_json()
    upload: str = response.get_json()["upload"]
    return upload


def upload(
    client: FlaskClient, headers: dict[str, str], content: bytes = CONTENT, **metadata: str
) -> dict[str, Any]:
    path = open_upload(client, headers, **metadata)
    response = client.put(path, data=content, headers=headers)
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def register(client: FlaskClient, headers: dict[str, str], **metadata: str) -> dict[str, Any]:
    response = client.post("/v1/evidence", json={**PHYSICAL, **metadata}, headers=headers)
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def post_act(
    client: FlaskClient, evidence_id: str, act: str, headers: dict[str, str], **overrides: Any
) -> TestResponse:
    body = {"type": act, **ACT_BODIES[act], **overrides}
    return client.post(f"/v1/evidence/{evidence_id}/events", json=body, headers=headers)


def custody_events(
    client: FlaskClient, evidence_id: str, headers: dict[str, str]
) -> list[dict[str, Any]]:
    response = client.get(f"/v1/evidence/{evidence_id}/custody", headers=headers)
    assert response.status_code == 200
    events: list[dict[str, Any]] = response.get_json()["events"]
    return events


def assert_problem(response: TestResponse, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json(force=True)
    assert body["status"] == status and body["type"] and body["title"] and body["detail"]
    return body


def error_fields(problem: dict[str, Any]) -> list[str]:
    """The top-level field each of a problem's ``errors`` names, in order."""
    errors = problem["errors"]
    assert all(set(e) == {"field", "reason"} and e["reason"] for e in errors), errors
    return [str(e["field"]).split(".")[0] for e in errors]


@dataclass(frozen=True)
class Snapshot:
    """What a refused request must leave exactly as it was."""

    ledger_size: int
    files: frozenset[str]
    records: tuple[str, ...]


def snapshot(deployment: Deployment) -> Snapshot:
    root = deployment.config.home / "objects"
    files = frozenset(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] != ".locks"
    )
    records = tuple(r.id for r in deployment.evidence.list(None, None, 1000, None))
    return Snapshot(deployment.ledger.size(), files, records)


def blob_path(deployment: Deployment, body: dict[str, Any]) -> Path:
    return deployment.config.home / "objects" / str(body["storage"]["key"])


def assert_audits_clean(deployment: Deployment) -> None:
    report = audit_ledger(deployment.ledger.store, deployment.objects, deployment.keys)
    assert report.ok, [str(f) for f in report.findings]


@dataclass
class Site:
    """A separate deployment with its own app, for settings the default home lacks."""

    home: Home
    client: FlaskClient
    tokens: Tokens


def build_site(
    tmp_path: Path, sqlite_url: str, clock: FakeClock | None = None, **config: Any
) -> Iterator[Site]:
    settings = make_config(tmp_path, sqlite_url, **config)
    result = initialise(settings)
    result.deployment.close()
    assert result.operator_token is not None
    deployment = open_deployment(settings, clock=clock) if clock else open_deployment(settings)
    home = Home(deployment, result.operator_token)
    client = create_app({"TESTING": True}, deployment=deployment).test_client()
    yield Site(home, client, add_tokens(home))
    deployment.close()


LIMIT = 50_000


@pytest.fixture
def small(tmp_path: Path, sqlite_url: str) -> Iterator[Site]:
    """A deployment that takes uploads of at most LIMIT bytes."""
    yield from build_site(tmp_path, sqlite_url, max_upload_bytes=LIMIT)


@pytest.fixture
def clocked(tmp_path: Path, sqlite_url: str, clock: FakeClock) -> Iterator[Site]:
    yield from build_site(tmp_path, sqlite_url, clock)


# -- intake ------------------------------------------------------------------------------------


def test_a_physical_item_is_registered_at_once(
    client: FlaskClient, deployment: Deployment, examiner: dict[str, str]
) -> None:
    size = deployment.ledger.size()

    body = register(client, examiner)

    assert body["kind"] == "physical" and body["ledger_index"] == size
    assert body["state"] == {
        "sealed": False,
        "seal": None,
        "on_hold": False,
        "checked_out_to": None,
        "transfer_pending_to": None,
        "disposed": False,
    }
    events = custody_events(client, body["id"], examiner)
    assert [(e["index"], e["type"]) for e in events] == [(size, "evidence.registered")]
    assert events[0]["data"]["seizure"] == {**SEIZURE, "at": "2026-11-27T09:30:00.000000Z"}
    assert body["seizure"] == events[0]["data"]["seizure"]
    assert client.get(f"/v1/evidence/{body['id']}", headers=examiner).get_json() == body


def test_a_digital_item_first_gets_an_upload_session_and_no_event(
    client: FlaskClient, deployment: Deployment, examiner: dict[str, str]
) -> None:
    before = snapshot(deployment)

    response = client.post("/v1/evidence", json=DIGITAL, headers=examiner)

    assert response.status_code == 201
    body = response.get_json()
    assert body["upload"] == f"/v1/evidence/{body['id']}/content"
    assert body["expires_at"]
    assert snapshot(deployment) == before
    assert_problem(client.get(f"/v1/evidence/{body['id']}", headers=examiner), 404)


def test_uploading_the_content_gives_the_record_its_index_and_a_receipt(
    client: FlaskClient, deployment: Deployment, examiner: dict[str, str]
) -> None:
    path = open_upload(client, examiner)
    size = deployment.ledger.size()

    response = client.put(path, data=CONTENT, headers=examiner)

    assert response.status_code == 201
    body = response.get_json()
    sha256 = hashlib.sha256(CONTENT)
    assert body["digests"]["sha256"] == sha256.hexdigest()
    assert body["size"] == len(CONTENT) and body["ledger_index"] == size
    assert response.headers["Repr-Digest"] == f"sha-256=:{b64(sha256.digest())}:"
    assert response.headers["Location"].endswith(f"/v1/evidence/{body['id']}")
    assert deployment.ledger.size() == size + 1
    events = custody_events(client, body["id"], examiner)
    assert [e["type"] for e in events] == ["evidence.ingested"]
    assert events[0]["data"]["digests"] == body["digests"]
    report = verify_receipt(
        json.dumps(body["receipt"]).encode(), [deployment.keys.current.verifier_key]
    )
    assert (report.evidence_id, report.ledger_index) == (body["id"], size)
    assert dict(report.digests) == body["digests"]


def test_the_receipt_can_be_fetched_again_and_still_verifies(
    client: FlaskClient, deployment: Deployment, examiner: dict[str, str]
) -> None:
    body = upload(client, examiner)
    register(client, examiner)  # the log grows past the item

    response = client.get(f"/v1/evidence/{body['id']}/receipt", headers=examiner)

    assert response.status_code == 200
    report = verify_receipt(response.get_data(), [deployment.keys.current.verifier_key])
    assert report.evidence_id == body["id"]
    manifest = client.get(f"/v1/evidence/{body['id']}/manifest", headers=examiner)
    assert manifest.get_data(as_text=True).startswith("custos/manifest/v1\n")


@pytest.mark.parametrize("header", ["Repr-Digest", "Content-Digest"])
def test_declared_digests_of_each_accepted_algorithm_are_checked_and_kept(
    client: FlaskClient, examiner: dict[str, str], header: str
) -> None:
    expected = {
        "sha-256": hashlib.sha256(CONTENT).hexdigest(),
        "sha-512": hashlib.sha512(CONTENT).hexdigest(),
        "md5": hashlib.md5(CONTENT).hexdigest(),
        "sha": hashlib.sha1(CONTENT).hexdigest(),
    }
    ours = {"sha-256": "sha256", "sha-512": "sha512", "md5": "md5", "sha": "sha1"}
    for algorithm, hexdigest in expected.items():
        path = open_upload(client, examiner)
        headers = {**examiner, header: repr_digest(CONTENT, algorithm)}

        response = client.put(path, data=CONTENT, headers=headers)

        assert response.status_code == 201, (algorithm, response.get_json())
        assert response.get_json()["digests"][ours[algorithm]] == hexdigest


def test_an_unknown_algorithm_in_a_digest_header_is_ignored(
    client: FlaskClient, examiner: dict[str, str]
) -> None:
    path = open_upload(client, examiner)
    headers = {**examiner, "Repr-Digest": "blake9=:AAAA:, " + repr_digest(CONTENT, "sha-256")}

    assert client.put(path, data=CONTENT, headers=headers).status_code == 201


@pytest.mark.parametrize("header", ["Repr-Digest", "Content-Digest"])
def test_a_digest_mismatch_is_422_leaves_nothing_and_can_be_retried(
    client: FlaskClient, deployment: Deployment, examiner: dict[str, str], header: str
) -> None:
    path = open_upload(client, examiner)
    before = snapshot(deployment)
    wrong = {**examiner, header: repr_digest(b"other bytes", "sha-256")}

    assert_problem(client.put(path, data=CONTENT, headers=wrong), 422)
    wrong_md5 = {
        **examiner,
        header: repr_digest(CONTENT, "sha-256") + ", md5=:" + b64(b"\x00" * 16) + ":",
    }
    assert_problem(client.put(path, data=CONTENT, headers=wrong_md5), 422)

    assert snapshot(deployment) == before
    right = {**examiner, header: repr_digest(CONTENT, "sha-256", "md5")}
    retried = client.put(path, data=CONTENT, headers=right)
    assert retried.status_code == 201
    assert_audits_clean(deployment)


def test_digest_headers_that_contradict_each_other_are_422(
    client: FlaskClient, deployment: Deployment, examiner: dict[str, str]
) -> None:
    path = open_upload(client, examiner)
    before = snapshot(deployment)
    headers = {
        **examiner,
        "Repr-Digest": repr_digest(CONTENT, "sha-256"),
        "Content-Digest": repr_digest(b"else", "sha-256"),
    }

    assert_problem(client.put(path, data=CONTENT, headers=headers), 422)
    assert snapshot(deployment) == before


@pytest.mark.parametrize(
    "value", ["sha-256=AAAA", "sha-256=:not base64!:", "sha-256=:" + b64(b"short") + ":"]
)
def test_a_malformed_digest_header_is_400(
    client: FlaskClient, deployment: Deployment, examiner: dict[str, str], value: str
) -> None:
    path = open_upload(client, examiner)
    before = snapshot(deployment)

    assert_problem(client.put(path, data=CONTENT, headers={**examiner, "Repr-Digest": value}), 400)
    assert snapshot(deployment) == before


def test_a_second_upload_is_409_and_changes_nothing(
    client: FlaskClient, deployment: Deployment, examiner: dict[str, str]
) -> None:
    path = open_upload(client, examiner)
    assert client.put(path, data=CONTENT, headers=examiner).status_code == 201
    before = snapshot(deployment)

    assert_problem(client.put(path, data=b"replacement", headers=examiner), 409)
    assert_problem(client.put(path, data=CONTENT, headers=examiner), 409)

    assert snapshot(deployment) == before


def test_an_upload_over_the_limit_by_its_content_length_is_413(small: Site) -> None:
    examiner = bearer(small.tokens.examiner)
    path = open_upload(small.client, examiner)
    before = snapshot(small.home.deployment)

    assert_problem(small.client.put(path, data=b"x" * (LIMIT + 1), headers=examiner), 413)

    assert snapshot(small.home.deployment) == before
    assert small.client.put(path, data=b"x" * LIMIT, headers=examiner).status_code == 201


def chunked(content: bytes) -> dict[str, Any]:
    """Test-client arguments for a chunked body, as a server that de-chunks passes it on."""
    return {
        "input_stream": io.BytesIO(content),
        "headers": {"Transfer-Encoding": "chunked"},
        "environ_overrides": {"wsgi.input_terminated": True},
    }


def put_chunked(
    client: FlaskClient, path: str, content: bytes, headers: dict[str, str]
) -> TestResponse:
    arguments = chunked(content)
    arguments["headers"].update(headers)
    return client.put(path, **arguments)


def test_a_chunked_upload_over_the_limit_is_413(small: Site) -> None:
    examiner = bearer(small.tokens.examiner)
    path = open_upload(small.client, examiner)
    before = snapshot(small.home.deployment)

    assert_problem(put_chunked(small.client, path, b"x" * (3 * LIMIT), examiner), 413)

    assert snapshot(small.home.deployment) == before
    assert_audits_clean(small.home.deployment)


def test_a_chunked_upload_within_the_limit_is_stored(small: Site) -> None:
    examiner = bearer(small.tokens.examiner)
    path = open_upload(small.client, examiner)
    content = b"y" * LIMIT

    response = put_chunked(small.client, path, content, examiner)

    assert response.status_code == 201
    assert response.get_json()["size"] == LIMIT
    assert response.get_json()["digests"]["sha256"] == hashlib.sha256(content).hexdigest()


def test_a_chunked_body_the_server_cannot_read_is_refused_not_stored_empty(
    client: FlaskClient, deployment: Deployment, examiner: dict[str, str]
) -> None:
    path = open_upload(client, examiner)
    before = snapshot(deployment)
    headers = {**examiner, "Transfer-Encoding": "chunked"}

    assert_problem(client.put(path, input_stream=io.BytesIO(CONTENT), headers=headers), 400)

    assert snapshot(deployment) == before


def test_a_body_shorter_than_its_content_length_leaves_nothing(
    client: FlaskClient, deployment: Deployment, examiner: dict[str, str]
) -> None:
    path = open_upload(client, examiner)
    before = snapshot(deployment)

    response = client.put(
        path,
        input_stream=io.BytesIO(CONTENT[:1000]),
        headers=examiner,
        environ_overrides={"CONTENT_LENGTH": str(len(CONTENT))},
    )

    assert_problem(response, 400)
    assert snapshot(deployment) == before
    assert client.put(path, data=CONTENT, headers=examiner).status_code == 201


def test_another_examiners_upload_session_is_404(
    client: FlaskClient, deployment: Deployment, tokens: Tokens
) -> None:
    path = open_upload(client, bearer(tokens.examiner))
    before = snapshot(deployment)

    assert_problem(client.put(path, data=CONTENT, headers=bearer(tokens.other_examiner)), 404)

    assert snapshot(deployment) == before


def test_an_expired_upload_session_is_404(clocked: Site, clock: FakeClock) -> None:
    examiner = bearer(clocked.tokens.examiner)
    path = open_upload(clocked.client, examiner)
    clock.advance(24 * 3600 + 1)
    before = snapshot(clocked.home.deployment)

    assert_problem(clocked.client.put(path, data=CONTENT, headers=examiner), 404)

    assert snapshot(clocked.home.deployment) == before


def test_the_same_bytes_uploaded_twice_make_two_records_on_one_blob(
    client: FlaskClient, deployment: Deployment, examiner: dict[str, str]
) -> None:
    first = upload(client, examiner, exhibit="E-1")
    second = upload(client, examiner, exhibit="E-2")

    assert first["id"] != second["id"]
    assert first["storage"]["key"] == second["storage"]["key"]
    blobs = [p for p in (deployment.config.home / "objects" / "blobs").rglob("*") if p.is_file()]
    assert blobs == [blob_path(deployment, first)]
    assert_audits_clean(deployment)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**DIGITAL, "kind": "virtual"}, "kind"),
        ({k: v for k, v in DIGITAL.items() if k != "case"}, "case"),
        ({k: v for k, v in DIGITAL.items() if k != "description"}, "description"),
        ({**DIGITAL, "exhibit": ""}, "exhibit"),
        ({**DIGITAL, "colour": "red"}, "colour"),
        ({**DIGITAL, "acquisition": {"digests": {"md5": "abc"}}}, "acquisition"),
    ],
    ids=["kind", "no-case", "no-description", "empty-exhibit", "unknown-field", "bad-digest"],
)
def test_invalid_intake_metadata_is_422_naming_the_field(
    client: FlaskClient,
    deployment: Deployment,
    examiner: dict[str, str],
    body: dict[str, Any],
    field: str,
) -> None:
    before = snapshot(deployment)

    problem = assert_problem(client.post("/v1/evidence", json=body, headers=examiner), 422)

    assert field in error_fields(problem)
    assert snapshot(deployment) == before


def test_an_intake_body_that_is_not_json_is_400(
    client: FlaskClient, examiner: dict[str, str]
) -> None:
    response = client.post(
        "/v1/evidence", data="kind=digital", headers=examiner, content_type="text/plain"
    )
    assert_problem(response, 400)


# -- custody acts ------------------------------------------------------------------------------


def test_every_act_is_recorded_with_its_data_in_the_custody_history(
    client: FlaskClient, deployment: Deployment, tokens: Tokens
) -> None:
    examiner, approver = bearer(tokens.examiner), bearer(tokens.approver)
    item = upload(client, examiner)
    order = [
        "evidence.transferred",
        "evidence.received",
        "evidence.checked_out",
        "evidence.checked_in",
        "evidence.examined",
        "evidence.noted",
        "evidence.sealed",
        "evidence.unsealed",
        "evidence.hold_set",
        "evidence.hold_released",
        "evidence.disposed",
    ]
    assert sorted(order) == sorted(ACTS)

    for act in order:
        by = approver if act == "evidence.disposed" else examiner
        response = post_act(client, item["id"], act, by)
        assert response.status_code == 201, (act, response.get_json())
        event = response.get_json()["event"]
        assert event["type"] == act and event["index"] == deployment.ledger.size() - 1

    events = custody_events(client, item["id"], examiner)
    assert [e["type"] for e in events] == ["evidence.ingested", *order]
    assert [e["index"] for e in events] == sorted(e["index"] for e in events)
    custodian = deployment.principals.get(CUSTODIAN).id
    for event in events[1:]:
        body = ACT_BODIES[event["type"]]
        shown = {k: v for k, v in body.items() if k not in ("findings", "text")}
        if event["type"] == "evidence.transferred":  # the custodian is recorded by its id
            shown["to"] = custodian
        assert shown.items() <= event["data"].items(), event
    examined, noted = (
        next(e for e in events if e["type"] == t) for t in ("evidence.examined", "evidence.noted")
    )
    assert "findings" not in examined["data"] and len(examined["data"]["findings_commitment"]) == 64
    assert "text" not in noted["data"] and len(noted["data"]["text_commitment"]) == 64
    history = json.dumps(events)
    assert "private diary" not in history and "smells of smoke" not in history
    assert events[-1]["data"]["content_deleted"] is True
    final = client.get(f"/v1/evidence/{item['id']}", headers=examiner).get_json()
    assert final["state"]["disposed"] is True and final["allowed_actions"] == []


def test_each_acts_required_fields_are_validated(
    client: FlaskClient, deployment: Deployment, tokens: Tokens
) -> None:
    examiner, approver = bearer(tokens.examiner), bearer(tokens.approver)
    item = register(client, examiner)
    before = snapshot(deployment)

    for act, required in REQUIRED.items():
        by = approver if act == "evidence.disposed" else examiner
        for field in required:
            body = {"type": act, **{k: v for k, v in ACT_BODIES[act].items() if k != field}}
            response = client.post(f"/v1/evidence/{item['id']}/events", json=body, headers=by)
            problem = assert_problem(response, 422)
            assert error_fields(problem) == [field], (act, problem)
            empty = {"type": act, **ACT_BODIES[act], field: ""}
            response = client.post(f"/v1/evidence/{item['id']}/events", json=empty, headers=by)
            assert field in error_fields(assert_problem(response, 422)), (act, field)
        unknown = {"type": act, **ACT_BODIES[act], "suspect_name": "someone"}
        response = client.post(f"/v1/evidence/{item['id']}/events", json=unknown, headers=by)
        assert "suspect_name" in error_fields(assert_problem(response, 422)), act
        wrong_type = {"type": act, **ACT_BODIES[act], **dict.fromkeys(required[:1], 42)}
        if required:
            response = client.post(f"/v1/evidence/{item['id']}/events", json=wrong_type, headers=by)
            assert required[0] in error_fields(assert_problem(response, 422)), act

    assert snapshot(deployment) == before


def test_an_invalid_act_is_one_422_naming_every_field_with_its_reason(
    client: FlaskClient, deployment: Deployment, examiner: dict[str, str]
) -> None:
    item = register(client, examiner)
    before = snapshot(deployment)
    body = {"type": "evidence.transferred", "from": "", "to": 7, "reason": "storage", "x": "y"}

    response = client.post(f"/v1/evidence/{item['id']}/events", json=body, headers=examiner)

    problem = assert_problem(response, 422)
    assert problem["errors"] == [
        {"field": "from", "reason": "empty"},
        {"field": "to", "reason": "not a string"},
        {"field": "location", "reason": "required: where"},
        {"field": "x", "reason": "unknown field"},
    ]
    assert "location: required: where" in problem["detail"]
    assert snapshot(deployment) == before


def test_the_act_schemas_are_the_act_table(client: FlaskClient) -> None:
    document = client.get("/v1/openapi.json").get_json()
    operation = document["paths"]["/v1/evidence/{evidence_id}/events"]["post"]
    bodies = operation["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    schemas = document["components"]["schemas"]
    shown = {}
    for ref in bodies:
        schema = schemas[ref["$ref"].rsplit("/", 1)[1]]
        [act] = schema["properties"]["type"]["enum"]
        shown[act] = (
            {n: p["maxLength"] for n, p in schema["properties"].items() if n != "type"},
            set(schema.get("required", [])) - {"type"},
        )
    assert shown == {
        act: (
            {f.name: f.max_length for f in specs},
            {f.name for f in specs if f.required},
        )
        for act, specs in ACT_FIELDS.items()
    }


@pytest.mark.parametrize(
    "body",
    [{"type": "evidence.stolen"}, {"type": "evidence.accessed"}, {"reason": "no type"}],
    ids=["unknown", "not-an-act", "missing"],
)
def test_an_unknown_or_missing_act_type_is_422(
    client: FlaskClient, deployment: Deployment, examiner: dict[str, str], body: dict[str, str]
) -> None:
    item = register(client, examiner)
    size = deployment.ledger.size()

    response = client.post(f"/v1/evidence/{item['id']}/events", json=body, headers=examiner)

    assert "type" in error_fields(assert_problem(response, 422))
    assert deployment.ledger.size() == size


@pytest.mark.parametrize("data", ["not json", "[1, 2]", "{"])
def test_an_act_body_that_is_not_a_json_object_is_400(
    client: FlaskClient, examiner: dict[str, str], data: str
) -> None:
    item = register(client, examiner)

    response = client.post(
        f"/v1/evidence/{item['id']}/events",
        data=data,
        headers=examiner,
        content_type="application/json",
    )

    assert_problem(response, 400)


def assert_refused(
    client: FlaskClient,
    deployment: Deployment,
    evidence_id: str,
    act: str,
    headers: dict[str, str],
) -> list[str]:
    """The act is 409 with ``allowed_actions`` and changes neither the ledger nor the item."""
    size = deployment.ledger.size()
    before = client.get(f"/v1/evidence/{evidence_id}", headers=headers).get_json()

    problem = assert_problem(post_act(client, evidence_id, act, headers), 409)

    assert deployment.ledger.size() == size
    assert client.get(f"/v1/evidence/{evidence_id}", headers=headers).get_json() == before
    allowed: list[str] = problem["allowed_actions"]
    assert allowed == before["allowed_actions"] and act not in allowed
    return allowed


def test_a_sealed_item_cannot_be_checked_out(
    client: FlaskClient, deployment: Deployment, examiner: dict[str, str]
) -> None:
    item = register(client, examiner)
    assert post_act(client, item["id"], "evidence.sealed", examiner).status_code == 201

    allowed = assert_refused(client, deployment, item["id"], "evidence.checked_out", examiner)

    assert "evidence.unsealed" in allowed


def test_an_item_is_checked_in_only_when_checked_out(
    client: FlaskClient, deployment: Deployment, examiner: dict[str, str]
) -> None:
    item = register(client, examiner)

    assert_refused(client, deployment, item["id"], "evidence.checked_in", examiner)
    assert post_act(client, item["id"], "evidence.checked_out", examiner).status_code == 201
    assert_refused(client, deployment, item["id"], "evidence.checked_out", examiner)
    assert_refused(client, deployment, item["id"], "evidence.sealed", examiner)
    checked_in = post_act(client, item["id"], "evidence.checked_in", examiner)
    assert checked_in.status_code == 201
    assert checked_in.get_json()["state"]["checked_out_to"] is None


def test_nothing_is_allowed_after_disposal(
    client: FlaskClient, deployment: Deployment, tokens: Tokens
) -> None:
    examiner, approver = bearer(tokens.examiner), bearer(tokens.approver)
    item = upload(client, examiner)
    assert post_act(client, item["id"], "evidence.disposed", approver).status_code == 201

    for act in ACTS:
        assert assert_refused(client, deployment, item["id"], act, approver) == []
    size = deployment.ledger.size()
    content = client.get(f"/v1/evidence/{item['id']}/content?purpose=review", headers=examiner)
    assert_problem(content, 409)
    assert deployment.ledger.size() == size


def test_only_an_approver_may_dispose(
    client: FlaskClient, deployment: Deployment, tokens: Tokens
) -> None:
    examiner = bearer(tokens.examiner)
    item = upload(client, examiner)
    before = snapshot(deployment)

    assert_problem(post_act(client, item["id"], "evidence.disposed", examiner), 403)

    assert snapshot(deployment) == before
    shown = client.get(f"/v1/evidence/{item['id']}", headers=examiner).get_json()
    assert shown["state"]["disposed"] is False


def test_a_hold_on_one_record_keeps_the_shared_blob_until_released(
    client: FlaskClient, deployment: Deployment, tokens: Tokens
) -> None:
    examiner, approver = bearer(tokens.examiner), bearer(tokens.approver)
    kept = upload(client, examiner, exhibit="E-1")
    gone = upload(client, examiner, exhibit="E-2")
    assert post_act(client, kept["id"], "evidence.hold_set", examiner).status_code == 201

    disposed = post_act(client, gone["id"], "evidence.disposed", approver)

    assert disposed.status_code == 201
    assert disposed.get_json()["event"]["data"]["content_deleted"] is False
    assert blob_path(deployment, kept).read_bytes() == CONTENT
    content = client.get(f"/v1/evidence/{kept['id']}/content?purpose=check", headers=examiner)
    assert content.get_data() == CONTENT
    assert_refused(client, deployment, kept["id"], "evidence.disposed", approver)

    assert post_act(client, kept["id"], "evidence.hold_released", examiner).status_code == 201
    last = post_act(client, kept["id"], "evidence.disposed", approver)
    assert last.get_json()["event"]["data"]["content_deleted"] is True
    assert not blob_path(deployment, kept).exists()
    assert_audits_clean(deployment)


# -- content access ----------------------------------------------------------------------------


def test_every_download_records_the_access_before_streaming(
    client: FlaskClient, deployment: Deployment, tokens: Tokens
) -> None:
    item = upload(client, bearer(tokens.examiner))

    for who, purpose in ((tokens.examiner, "imaging"), (tokens.court, "trial exhibit")):
        size = deployment.ledger.size()
        response = client.get(
            f"/v1/evidence/{item['id']}/content",
            query_string={"purpose": purpose},
            headers=bearer(who),
            buffered=False,
        )
        assert response.status_code == 200
        assert deployment.ledger.size() == size + 1  # recorded before any byte was read
        assert response.headers["Custos-Access-Index"] == str(size)
        data = response.get_data()
        response.close()
        assert data == CONTENT
        assert response.headers["Repr-Digest"] == (
            f"sha-256=:{b64(hashlib.sha256(data).digest())}:"
        )
        assert int(response.headers["Content-Length"]) == len(CONTENT)
        access = custody_events(client, item["id"], bearer(who))[-1]
        assert access["type"] == "evidence.accessed" and access["index"] == size
        sha256 = hashlib.sha256(CONTENT).hexdigest()
        assert access["data"] == {"purpose": purpose, "digests": {"sha256": sha256}}
    assert deployment.ledger.size() == size + 1


@pytest.mark.parametrize("query", ["", "?purpose="], ids=["missing", "empty"])
def test_a_download_without_a_purpose_is_400_and_records_nothing(
    client: FlaskClient, deployment: Deployment, examiner: dict[str, str], query: str
) -> None:
    item = upload(client, examiner)
    size = deployment.ledger.size()

    response = client.get(f"/v1/evidence/{item['id']}/content{query}", headers=examiner)

    assert "purpose" in error_fields(assert_problem(response, 400))
    assert deployment.ledger.size() == size


def test_a_physical_item_has_no_content_to_download(
    client: FlaskClient, examiner: dict[str, str]
) -> None:
    item = register(client, examiner)

    response = client.get(f"/v1/evidence/{item['id']}/content?purpose=x", headers=examiner)

    assert_problem(response, 409)


def test_a_corrupted_blob_is_refused_before_any_byte_and_records_the_integrity_failure(
    client: FlaskClient, deployment: Deployment, examiner: dict[str, str]
) -> None:
    item = upload(client, examiner)
    path = blob_path(deployment, item)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    path.write_bytes(CONTENT[:-1] + b"!")
    size = deployment.ledger.size()

    response = client.get(f"/v1/evidence/{item['id']}/content?purpose=review", headers=examiner)

    # The bytes are re-hashed before the access is recorded: nothing goes out, no access.
    assert_problem(response, 500)
    events = custody_events(client, item["id"], examiner)
    assert [e["type"] for e in events[-1:]] == ["evidence.integrity_failed"]
    assert events[-1]["index"] == size
    assert events[-1]["data"]["algorithms"] == ["sha256"]


# -- authorization and lookup ------------------------------------------------------------------


def test_every_evidence_endpoint_needs_a_token(
    client: FlaskClient, deployment: Deployment, examiner: dict[str, str]
) -> None:
    item = upload(client, examiner)
    base = f"/v1/evidence/{item['id']}"
    size = deployment.ledger.size()

    for method, path in [
        ("POST", "/v1/evidence"),
        ("GET", "/v1/evidence"),
        ("GET", base),
        ("PUT", f"{base}/content"),
        ("GET", f"{base}/content?purpose=x"),
        ("GET", f"{base}/custody"),
        ("POST", f"{base}/events"),
        ("GET", f"{base}/manifest"),
        ("GET", f"{base}/receipt"),
    ]:
        response = client.open(path, method=method, json={"type": "evidence.noted", "text": "x"})
        assert_problem(response, 401)
        bad = client.open(path, method=method, headers=bearer("not-a-token"))
        assert_problem(bad, 401)

    assert deployment.ledger.size() == size


def test_roles_that_may_not_act_get_403_and_change_nothing(
    client: FlaskClient, deployment: Deployment, tokens: Tokens
) -> None:
    examiner = bearer(tokens.examiner)
    item = upload(client, examiner)
    session = open_upload(client, examiner)
    before = snapshot(deployment)
    note = {"type": "evidence.noted", "text": "x"}

    for token in (tokens.court, tokens.provider, tokens.approver, tokens.operator):
        assert_problem(client.post("/v1/evidence", json=PHYSICAL, headers=bearer(token)), 403)
        assert_problem(client.put(session, data=CONTENT, headers=bearer(token)), 403)
    for token in (tokens.court, tokens.provider, tokens.operator):
        response = client.post(
            f"/v1/evidence/{item['id']}/events", json=note, headers=bearer(token)
        )
        assert_problem(response, 403)
    for path in ("", "/custody", "/content?purpose=x", "/manifest"):
        response = client.get(f"/v1/evidence/{item['id']}{path}", headers=bearer(tokens.provider))
        assert_problem(response, 403)
    # A provider may re-fetch the receipts of its own responses; any other item is not there.
    receipt = client.get(f"/v1/evidence/{item['id']}/receipt", headers=bearer(tokens.provider))
    assert_problem(receipt, 404)
    assert_problem(client.get("/v1/evidence", headers=bearer(tokens.provider)), 403)

    assert snapshot(deployment) == before
    assert client.get(f"/v1/evidence/{item['id']}", headers=bearer(tokens.court)).status_code == 200


@pytest.mark.parametrize("evidence_id", [MISSING_ID, "nonsense", "ev_ZZZZ"])
def test_an_unknown_item_is_404_everywhere(
    client: FlaskClient, deployment: Deployment, examiner: dict[str, str], evidence_id: str
) -> None:
    size = deployment.ledger.size()
    base = f"/v1/evidence/{evidence_id}"

    for method, path in [
        ("GET", base),
        ("GET", f"{base}/custody"),
        ("GET", f"{base}/content?purpose=x"),
        ("GET", f"{base}/manifest"),
        ("GET", f"{base}/receipt"),
        ("PUT", f"{base}/content"),
    ]:
        response = client.open(path, method=method, headers=examiner, data=b"x")
        assert_problem(response, 404)
    response = client.post(
        f"{base}/events", json={"type": "evidence.noted", "text": "x"}, headers=examiner
    )
    assert_problem(response, 404)

    assert deployment.ledger.size() == size


def list_all(client: FlaskClient, headers: dict[str, str], **query: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        params = {**query, **({"cursor": cursor} if cursor else {})}
        response = client.get("/v1/evidence", query_string=params, headers=headers)
        assert response.status_code == 200, response.get_json()
        page = response.get_json()
        assert len(page["items"]) <= query.get("limit", 50)
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the cursor never ran out")


def test_listing_pages_through_every_item_once_and_filters_by_case_and_exhibit(
    client: FlaskClient, examiner: dict[str, str], tokens: Tokens
) -> None:
    made = [register(client, examiner, case="A", exhibit=f"A-{n}")["id"] for n in range(5)]
    made.append(upload(client, examiner, case="A", exhibit="A-1")["id"])
    made += [register(client, examiner, case="B", exhibit=f"B-{n}")["id"] for n in range(2)]

    for limit in (1, 2, 3, 50):
        assert [i["id"] for i in list_all(client, examiner, limit=limit)] == made
    assert [i["id"] for i in list_all(client, examiner, case="A", limit=2)] == made[:6]
    assert [i["id"] for i in list_all(client, examiner, case="B")] == made[6:]
    by_exhibit = list_all(client, bearer(tokens.court), case="A", exhibit="A-1", limit=1)
    assert [i["id"] for i in by_exhibit] == [made[1], made[5]]
    assert list_all(client, examiner, case="C") == []


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=many", "cursor=%%%"])
def test_a_bad_list_query_is_400(client: FlaskClient, examiner: dict[str, str], query: str) -> None:
    assert_problem(client.get(f"/v1/evidence?{query}", headers=examiner), 400)


def test_examiners_and_courts_read_findings_and_notes_that_open_their_commitments(
    client: FlaskClient, tokens: Tokens
) -> None:
    examiner = bearer(tokens.examiner)
    item = register(client, examiner)
    for act, text in (("evidence.examined", "a scratch on the casing"), ("evidence.noted", "ok")):
        field = "findings" if act == "evidence.examined" else "text"
        assert post_act(client, item["id"], act, examiner, **{field: text}).status_code == 201

    answers = {
        role: client.get(f"/v1/evidence/{item['id']}/disclosures", headers=bearer(token))
        for role, token in (("examiner", tokens.examiner), ("court", tokens.court))
    }

    for answer in answers.values():
        assert answer.status_code == 200, answer.get_json()
        found = answer.get_json()["disclosures"]
        assert [(d["type"], d["field"], d["text"]) for d in found] == [
            ("evidence.examined", "findings", "a scratch on the casing"),
            ("evidence.noted", "text", "ok"),
        ]
        events = {e["index"]: e for e in custody_events(client, item["id"], examiner)}
        for disclosed in found:
            opened = hashlib.sha256(
                bytes.fromhex(disclosed["salt"]) + disclosed["text"].encode()
            ).hexdigest()
            event = events[disclosed["index"]]
            assert opened == disclosed["commitment"]
            assert event["data"][f"{disclosed['field']}_commitment"] == opened


def test_no_one_else_reads_findings_and_a_provider_does_not_learn_the_item_exists(
    client: FlaskClient, tokens: Tokens
) -> None:
    examiner = bearer(tokens.examiner)
    item = register(client, examiner)
    post_act(client, item["id"], "evidence.examined", examiner, findings="secret finding")
    path = f"/v1/evidence/{item['id']}/disclosures"

    assert_problem(client.get(path, headers=bearer(tokens.provider)), 404)
    # An admin is no member of the case: the item does not exist for it.
    assert_problem(client.get(path, headers=bearer(tokens.operator)), 404)
    body = assert_problem(client.get(path, headers=bearer(tokens.approver)), 403)
    assert "secret finding" not in json.dumps(body)
    assert_problem(client.get(f"/v1/evidence/{MISSING_ID}/disclosures", headers=examiner), 404)
