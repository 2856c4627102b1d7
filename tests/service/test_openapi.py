"""Tests of the OpenAPI document and the docs page: the document is generated from the views
that run, so it lists them all, and the page renders it with no file from elsewhere."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from custody.acts import ACTS

OPENAPI = "/v1/openapi.json"
DOCS = "/v1/docs"
# The document and the docs page are served under /v1/ but are not API operations.
DOCUMENTATION_BLUEPRINTS = {"api-docs", "docs"}
# The desks are pages for people (service/pages), outside /v1: not API operations either.
PAGES_BLUEPRINT = "pages"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get(OPENAPI)
    assert response.status_code == 200
    doc: dict[str, Any] = response.get_json()
    return doc


def operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def resolve(document: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """A response object, following a ``$ref`` to ``#/components/responses/...``."""
    if "$ref" in response:
        resolved: dict[str, Any] = document["components"]["responses"][
            response["$ref"].rsplit("/", 1)[1]
        ]
        return resolved
    return response


def test_openapi_document_is_served_under_v1(client: FlaskClient, document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "Custos"
    assert client.get("/openapi.json").status_code == 404


def test_openapi_document_is_valid(document: dict[str, Any]) -> None:
    validate(document)


def test_openapi_lists_every_api_route(app: Flask, document: dict[str, Any]) -> None:
    documented = set(document["paths"])

    served = {
        re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        and rule.endpoint.split(".")[0] not in {*DOCUMENTATION_BLUEPRINTS, PAGES_BLUEPRINT}
    }

    assert served
    assert served == documented


def test_every_operation_documents_a_success_and_its_errors_as_problems(
    document: dict[str, Any],
) -> None:
    for name, operation in operations(document):
        statuses = set(operation["responses"])
        assert any(s.startswith("2") for s in statuses), name
        assert "default" in statuses, name
        for status in statuses - {"default"}:
            if not status.startswith("2"):
                content = resolve(document, operation["responses"][status])["content"]
                assert set(content) == {"application/problem+json"}, (name, status)


def test_problem_responses_name_the_rfc_9457_members(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]

    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    for response in document["components"]["responses"].values():
        assert response["content"]["application/problem+json"]["schema"] == {
            "$ref": "#/components/schemas/Problem"
        }


def test_views_behind_a_token_say_so(client: FlaskClient, document: dict[str, Any]) -> None:
    entries = document["paths"]["/v1/log/entries/{index}"]["get"]
    checkpoint = document["paths"]["/v1/log/checkpoint"]["get"]

    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert entries["security"] == [{"bearer": []}]
    assert {"401", "403"} <= set(entries["responses"])
    assert "security" not in checkpoint
    assert client.get("/v1/log/entries/0").status_code == 401
    assert client.get("/v1/log/checkpoint").status_code == 200


def test_each_custody_act_body_is_documented(document: dict[str, Any]) -> None:
    body = document["paths"]["/v1/evidence/{evidence_id}/events"]["post"]["requestBody"]
    schemas = document["components"]["schemas"]

    variants = [
        schemas[ref["$ref"].rsplit("/", 1)[1]]
        for ref in body["content"]["application/json"]["schema"]["oneOf"]
    ]

    assert sorted(v["properties"]["type"]["enum"][0] for v in variants) == sorted(ACTS)
    transferred = next(v for v in variants if "from" in v["properties"])
    assert set(transferred["required"]) == {"type", "from", "to", "location", "reason"}


def test_openapi_documents_the_proof_parameters(document: dict[str, Any]) -> None:
    paths = document["paths"]

    inclusion = {p["name"]: p for p in paths["/v1/log/proofs/inclusion"]["get"]["parameters"]}
    consistency = {p["name"] for p in paths["/v1/log/proofs/consistency"]["get"]["parameters"]}

    assert set(inclusion) == {"index", "leaf_hash", "tree_size"}
    assert inclusion["tree_size"]["required"] is True
    assert consistency == {"from", "to"}


class _References(HTMLParser):
    """Every ``src`` and ``href`` in a page, and its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def test_docs_page_needs_nothing_from_another_host(client: FlaskClient) -> None:
    page = client.get(DOCS)
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    references = _References()
    references.feed(page.get_data(as_text=True))

    assert len(references.urls) >= 3  # Swagger UI's two scripts and its style sheet
    for url in references.urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        if url.endswith(".css"):
            # Its images are inline (data: URLs); nothing names another host.
            assert not re.search(r"url\(\s*['\"]?(https?:)?//", asset.get_data(as_text=True))
    config = "".join(references.scripts)
    assert f'url: "{OPENAPI}"' in config
    # Swagger UI would otherwise load a validity badge from an online validator.
    assert '"validatorUrl": null' in config


def test_docs_assets_stay_inside_swagger_ui(client: FlaskClient) -> None:
    assert client.get("/v1/docs/../../service/__init__.py").status_code == 404
    assert client.get("/v1/docs/no-such-file.js").status_code == 404
