"""Tests of GET /v1/evidence/{id}/bundle: the exhibit bundle over HTTP, for the court and the
examiner, streamed as an attachment, with the same bytes the writer gives."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from flask.testing import FlaskClient

from custody.events import Event
from custody.verify.bundle import verify_bundle
from storage.deployment import Deployment
from tests.conftest import Home, bearer
from tests.factories import in_case

CONTENT = b"an acquired image " * 1000


@pytest.fixture
def tokens(home: Home) -> dict[str, str]:
    principals = home.deployment.principals
    operator = principals.get("operator").actor
    tokens = {
        role: principals.add(f"a-{role}", role, operator)[1]
        for role in ("examiner", "court", "approver", "authority")
    }
    in_case(home.deployment, "C-1", "a-examiner", "a-court", "a-approver", "a-authority")
    return tokens


def ingest(client: FlaskClient, token: str, content: bytes = CONTENT) -> str:
    metadata = {"kind": "digital", "case": "C-1", "exhibit": "HD-1", "description": "disk"}
    session = client.post("/v1/evidence", json=metadata, headers=bearer(token)).get_json()
    uploaded = client.put(session["upload"], data=content, headers=bearer(token))
    assert uploaded.status_code == 201, uploaded.get_json()
    evidence_id: str = session["id"]
    return evidence_id


def assert_problem(response: Any, status: int) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("role", ["court", "examiner"])
def test_the_bundle_is_an_attachment_with_the_writers_bytes(
    client: FlaskClient, deployment: Deployment, tokens: dict[str, str], role: str
) -> None:
    item = ingest(client, tokens["examiner"])

    response = client.get(f"/v1/evidence/{item}/bundle", headers=bearer(tokens[role]))

    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"] == f'attachment; filename="{item}.zip"'
    assert int(response.headers["Content-Length"]) == len(response.data)
    direct = io.BytesIO()
    actor = deployment.principals.get(f"a-{role}").actor
    deployment.bundles.export([item], direct, by=actor)
    assert response.data == direct.getvalue()


def test_the_bundle_is_streamed_not_buffered(client: FlaskClient, tokens: dict[str, str]) -> None:
    item = ingest(client, tokens["examiner"])

    response = client.get(
        f"/v1/evidence/{item}/bundle", headers=bearer(tokens["court"]), buffered=False
    )

    assert response.status_code == 200 and response.is_streamed
    body = b"".join(response.response)
    response.close()
    assert zipfile.ZipFile(io.BytesIO(body)).testzip() is None


def test_with_content_the_bytes_and_the_access_are_in_the_bundle(
    client: FlaskClient, deployment: Deployment, tokens: dict[str, str]
) -> None:
    item = ingest(client, tokens["examiner"])

    response = client.get(
        f"/v1/evidence/{item}/bundle?with_content=true", headers=bearer(tokens["court"])
    )

    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert archive.read(f"items/{item}/content") == CONTENT
    last = deployment.ledger.subject_entries(f"evidence:{item}")[-1]
    access = Event.decode(archive.read(f"items/{item}/events/{last.index:020d}"))
    assert access.type == "evidence.accessed" and access.actor.role == "court"
    assert archive.namelist()[-1] == "report.html"
    report = archive.read("report.html").decode("utf-8")
    assert ">VERIFIED<" in report and "the content is verified by the court" in report


@pytest.mark.parametrize("role", ["approver", "authority"])
def test_other_roles_are_refused(client: FlaskClient, tokens: dict[str, str], role: str) -> None:
    item = ingest(client, tokens["examiner"])

    assert_problem(client.get(f"/v1/evidence/{item}/bundle", headers=bearer(tokens[role])), 403)
    assert_problem(client.get(f"/v1/evidence/{item}/bundle"), 401)


def test_an_unknown_item_is_404_and_a_bad_option_400(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    item = ingest(client, tokens["examiner"])
    court = bearer(tokens["court"])

    assert_problem(client.get("/v1/evidence/ev_0000000000000000/bundle", headers=court), 404)
    assert_problem(client.get(f"/v1/evidence/{item}/bundle?with_content=maybe", headers=court), 400)


def test_a_disposed_item_with_content_is_409_and_records_nothing(
    client: FlaskClient, deployment: Deployment, tokens: dict[str, str]
) -> None:
    item = ingest(client, tokens["examiner"])
    disposal = {"type": "evidence.disposed", "authority": "order 1", "method": "wiped"}
    disposed = client.post(
        f"/v1/evidence/{item}/events", json=disposal, headers=bearer(tokens["approver"])
    )
    assert disposed.status_code == 201, disposed.get_json()
    size = deployment.ledger.size()

    response = client.get(
        f"/v1/evidence/{item}/bundle?with_content=true", headers=bearer(tokens["court"])
    )

    assert_problem(response, 409)
    assert deployment.ledger.size() == size


def test_the_route_is_documented_as_a_zip_download(client: FlaskClient) -> None:
    document = client.get("/v1/openapi.json").get_json()

    operation = document["paths"]["/v1/evidence/{evidence_id}/bundle"]["get"]

    assert set(operation["responses"]["200"]["content"]) == {"application/zip"}
    assert "Content-Disposition" in operation["responses"]["200"]["headers"]
    assert {"400", "401", "403", "404", "409", "default"} <= set(operation["responses"])
    assert [p["name"] for p in operation["parameters"] if p["in"] == "query"] == ["with_content"]


def post_bundle(client: FlaskClient, token: str, body: Any) -> Any:
    return client.post("/v1/bundles", json=body, headers=bearer(token))


def test_several_items_are_one_bundle_that_verifies(
    client: FlaskClient, deployment: Deployment, tokens: dict[str, str]
) -> None:
    first = ingest(client, tokens["examiner"])
    second = ingest(client, tokens["examiner"], b"a second image" * 100)

    response = post_bundle(client, tokens["court"], {"evidence_ids": [first, second]})

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"] == 'attachment; filename="exhibit-2-items.zip"'
    keys = [v.verifier_key() for v in deployment.ledger.keys.verifiers]
    verification = verify_bundle(response.data, keys)
    assert verification.ok, [s for s in verification.failed]
    assert [item.evidence_id for item in verification.items] == sorted([first, second])


def test_a_kept_checkpoint_size_puts_a_consistency_proof_in_the_bundle(
    client: FlaskClient, deployment: Deployment, tokens: dict[str, str]
) -> None:
    first = ingest(client, tokens["examiner"])
    kept = deployment.ledger.checkpoint()
    ingest(client, tokens["examiner"], b"later evidence")

    response = post_bundle(
        client, tokens["court"], {"evidence_ids": [first], "known_checkpoint_size": kept.size}
    )

    assert response.status_code == 200, response.get_data(as_text=True)
    members = zipfile.ZipFile(io.BytesIO(response.data)).namelist()
    assert {"known-checkpoint", "consistency"} <= set(members)
    keys = [v.verifier_key() for v in deployment.ledger.keys.verifiers]
    verification = verify_bundle(response.data, keys, known_checkpoint=kept.note)
    assert verification.ok
    assert 8 in {step.number for step in verification.steps if step.status == "pass"}


def test_a_size_the_log_never_signed_is_404_and_records_nothing(
    client: FlaskClient, deployment: Deployment, tokens: dict[str, str]
) -> None:
    item = ingest(client, tokens["examiner"])
    size = deployment.ledger.size()

    response = post_bundle(
        client,
        tokens["court"],
        {"evidence_ids": [item], "known_checkpoint_size": 10**9, "with_content": True},
    )

    assert_problem(response, 404)
    assert deployment.ledger.size() == size


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"evidence_ids": []},
        {"evidence_ids": "ev_1"},
        {"evidence_ids": ["x"], "known_checkpoint_size": 0},
        {"evidence_ids": ["x"], "surprise": 1},
    ],
)
def test_a_malformed_request_is_422_naming_the_field(
    client: FlaskClient, tokens: dict[str, str], body: Any
) -> None:
    assert_problem(post_bundle(client, tokens["court"], body), 422)


def test_an_item_named_twice_is_422(client: FlaskClient, tokens: dict[str, str]) -> None:
    item = ingest(client, tokens["examiner"])

    response = post_bundle(client, tokens["court"], {"evidence_ids": [item, item]})

    assert_problem(response, 422)
    assert {"field": "evidence_ids", "reason": "name each item once"} in response.get_json()[
        "errors"
    ]


def test_bundling_is_for_courts_and_examiners_only(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    item = ingest(client, tokens["examiner"])

    assert_problem(post_bundle(client, tokens["authority"], {"evidence_ids": [item]}), 403)
    assert_problem(client.post("/v1/bundles", json={"evidence_ids": [item]}), 401)
    assert_problem(
        post_bundle(client, tokens["court"], {"evidence_ids": [item, "ev_0000000000000000"]}), 404
    )
