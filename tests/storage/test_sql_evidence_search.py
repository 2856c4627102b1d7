"""Searching items on each database: within the caller's cases only, by case, exhibit,
description or digest, in any letter case, with LIKE's wildcards taken literally."""

from __future__ import annotations

import hashlib
import io

from tests.conftest import Home
from tests.factories import SEIZURE, in_case


def test_a_search_finds_items_within_the_caller_s_cases_only(home_on_each_database: Home) -> None:
    deployment = home_on_each_database.deployment
    people = deployment.principals
    operator = people.get("operator").actor
    eva = people.add("eva", "examiner", operator)[0].actor
    otto = people.add("otto", "examiner", operator)[0].actor
    in_case(deployment, "C-1", "eva")
    in_case(deployment, "C-2", "otto")
    found: dict[str, str] = {}
    for case, by, exhibit, description in (
        ("C-1", eva, "EX-1", "Telemóvel Samsung, 100% charged"),
        ("C-1", eva, "EX-2", "a laptop"),
        ("C-2", otto, "EX-3", "another Samsung"),
    ):
        metadata = {
            "kind": "physical",
            "case": case,
            "exhibit": exhibit,
            "description": description,
            "seizure": dict(SEIZURE),
        }
        appended = deployment.intake.register_physical(metadata, by)
        found[exhibit] = appended.event.subject.id
    session = deployment.intake.open_session(
        {"kind": "digital", "case": "C-1", "exhibit": "EX-4", "description": "image"}, eva
    )
    deployment.intake.receive(session.id, io.BytesIO(b"bytes"), eva)
    digest = hashlib.sha256(b"bytes").hexdigest()

    def search(text: str, by: object = eva) -> set[str]:
        return {r.id for r in deployment.handling.search(by, text, 10)}  # type: ignore[arg-type]

    assert search("samsung") == {found["EX-1"]}
    assert search("SAMSUNG", otto) == {found["EX-3"]}
    assert search("telemóvel") == {found["EX-1"]}
    assert search("100%") == {found["EX-1"]} and search("0%") == {found["EX-1"]}
    assert search("1_") == set() and search("description") == set()
    assert search(f"sha256:{digest.upper()}") == {session.id}
    assert search("ex-") == {found["EX-1"], found["EX-2"], session.id}
    assert search("   ") == set()


def test_an_exhibit_id_case_or_digest_named_exactly_finds_just_its_items(
    home_on_each_database: Home,
) -> None:
    """What a person looking for one item types is read from indexes and answers with that
    item alone, where a search for the same text inside other names finds more."""
    deployment = home_on_each_database.deployment
    people = deployment.principals
    eva = people.add("eva", "examiner", people.get("operator").actor)[0].actor
    otto = people.add("otto", "examiner", people.get("operator").actor)[0].actor
    in_case(deployment, "C-1", "eva")
    in_case(deployment, "C-1-B", "eva")
    in_case(deployment, "C-2", "otto")
    ids: dict[str, str] = {}
    for case, by, exhibit in (
        ("C-1", eva, "EX-1"),
        ("C-1", eva, "EX-10"),
        ("C-1-B", eva, "EX-100"),
        ("C-2", otto, "EX-1"),
    ):
        metadata = {
            "kind": "physical",
            "case": case,
            "exhibit": exhibit,
            "description": f"item {exhibit}",
            "seizure": dict(SEIZURE),
        }
        ids[f"{case}/{exhibit}"] = deployment.intake.register_physical(
            metadata, by
        ).event.subject.id
    session = deployment.intake.open_session(
        {"kind": "digital", "case": "C-1-B", "exhibit": "IMG-1", "description": "image"},
        eva,
    )
    deployment.intake.receive(session.id, io.BytesIO(b"image bytes"), eva)
    digest = hashlib.sha256(b"image bytes").hexdigest()

    def search(text: str) -> list[str]:
        return [r.id for r in deployment.handling.search(eva, text, 10)]

    assert search("EX-1") == [ids["C-1/EX-1"]]  # not EX-10 or EX-100, nor C-2's EX-1
    assert search("EX-10") == [ids["C-1/EX-10"]]
    assert search("ex-1") == [ids["C-1/EX-1"], ids["C-1/EX-10"], ids["C-1-B/EX-100"]]
    assert search(ids["C-1-B/EX-100"]) == [ids["C-1-B/EX-100"]]
    assert search(ids["C-2/EX-1"]) == []  # another case's item, named by its id
    assert search("C-1") == [ids["C-1/EX-1"], ids["C-1/EX-10"]]  # the case, not C-1-B
    assert search("C-2") == []
    assert search(digest) == search(f"sha256:{digest.upper()}") == [session.id]
