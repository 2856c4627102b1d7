"""Tests of the OpenAPI document: generated from the views that run, so it lists them all."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient


def test_openapi_document_is_served(client: FlaskClient) -> None:
    response = client.get("/openapi.json")

    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] == "Custos"


def test_openapi_lists_every_api_route(app: Flask, client: FlaskClient) -> None:
    documented = set(client.get("/openapi.json").get_json()["paths"])

    served = {
        re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/v1/")
    }

    assert served
    assert served == documented


def test_openapi_documents_the_proof_parameters(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]

    inclusion = {p["name"]: p for p in paths["/v1/log/proofs/inclusion"]["get"]["parameters"]}
    consistency = {p["name"] for p in paths["/v1/log/proofs/consistency"]["get"]["parameters"]}

    assert set(inclusion) == {"index", "leaf_hash", "tree_size"}
    assert inclusion["tree_size"]["required"] is True
    assert consistency == {"from", "to"}
