"""Steps (10) and (11) of the exhibit checklist, and what a bundle for a court discloses: the
findings and notes of its items (to the readers entitled to them, custody/disclosure.py) and
the names of the people and providers its events mention (custody/verify/parties.py), each
checked against the salted commitment in its event; and the report that shows them.

The sound bundles and the tamper corpus (including the cases of these two steps) are
tests/custody/test_verify_bundle.py's; this file checks what the steps say and show.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from custody.disclosure import FINDINGS_READERS, Disclosure, may_read_findings
from custody.errors import Forbidden
from custody.events import Actor
from custody.json_codec import canonical_json
from custody.principals import ROLES
from custody.verify import BUNDLE_CHECKS, ExhibitVerification, verify_bundle
from custody.verify.report import render_report
from tests.custody.test_verify_bundle import (
    ACQUISITION,
    CLERK_NAME,
    DESK_NAME,
    EXAMINER_NAME,
    FINDINGS,
    NOTE,
    WARRANT,
    Exhibits,
    Rewrite,
    a_display_name_changed,
    as_version,
    event_name,
    index_of,
    make_exhibits,
    members,
    rezipped,
    the_disclosed_findings_changed,
)


@pytest.fixture(scope="module")
def exhibits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exhibits]:
    made = make_exhibits(tmp_path_factory.mktemp("exhibits"))
    yield made
    made.deployment.close()


def step(verification: ExhibitVerification, number: int) -> str:
    [found] = [s for s in verification.steps if s.number == number]
    return f"{found.status}: {found.detail}"


# -- (10) disclosure ------------------------------------------------------------------------------


def test_a_court_s_bundle_discloses_every_finding_and_note_checked_against_its_event(
    exhibits: Exhibits,
) -> None:
    assert json.loads(members(exhibits.item_zip)["bundle.json"])["disclosed"] is True

    verification = verify_bundle(exhibits.item_zip, [exhibits.key])

    assert verification.ok, verification.failed
    (item,) = verification.items
    texts = {event.type: event.disclosed for event in item.events if event.disclosed}
    assert texts == {"evidence.examined": FINDINGS, "evidence.noted": NOTE}
    assert step(verification, 10).startswith("pass: 2 findings and notes disclosed")


def test_a_changed_finding_fails_step_ten_saying_it_does_not_match_and_is_not_shown(
    exhibits: Exhibits, tmp_path: Path
) -> None:
    case = the_disclosed_findings_changed(exhibits, tmp_path)

    verification = verify_bundle(case.bundle, [exhibits.key])

    detail = step(verification, 10)
    assert detail.startswith("fail: the disclosed findings of event")
    assert "do not match its findings_commitment" in detail
    assert "the text or the salt is not the one recorded" in detail
    assert all(event.disclosed is None for event in verification.items[0].events)
    page = render_report(verification)
    assert "the seal was broken" not in page and "NOT VERIFIED" in page


def test_a_disclosure_for_an_event_that_commits_to_nothing_fails_step_ten(
    exhibits: Exhibits,
) -> None:
    sealed = index_of(exhibits, "evidence.sealed")
    extra = canonical_json({"salt": "00" * 32, "text": "slipped in"})
    bundle = rezipped(
        exhibits.item_zip,
        Rewrite(add=[(event_name(exhibits.item, sealed, "disclosed"), extra)]),
    )

    verification = verify_bundle(bundle, [exhibits.key])

    assert verification.failed[0].number == 10
    assert verification.failed[0].event_index == sealed
    assert "names no examination or note of this item" in verification.failed[0].detail


def without_disclosure(bundle: bytes, *, keep_members: bool = False) -> bytes:
    found = members(bundle)
    index = json.loads(found["bundle.json"])
    index["disclosed"] = False
    drop = frozenset(n for n in found if "/disclosed/" in n and not keep_members)
    return rezipped(bundle, Rewrite(replace={"bundle.json": canonical_json(index)}, drop=drop))


def test_a_bundle_without_disclosure_shows_commitments_only(exhibits: Exhibits) -> None:
    verification = verify_bundle(without_disclosure(exhibits.item_zip), [exhibits.key])

    assert verification.ok, verification.failed
    assert step(verification, 10).startswith("skipped: not applicable: the bundle was exported")
    assert all(event.disclosed is None for event in verification.items[0].events)


def test_a_bundle_saying_it_discloses_nothing_may_carry_no_disclosure(
    exhibits: Exhibits,
) -> None:
    bundle = without_disclosure(exhibits.item_zip, keep_members=True)

    verification = verify_bundle(bundle, [exhibits.key])

    assert verification.failed[0].number == 1
    assert "bundle.json says disclosed false" in verification.failed[0].detail


@pytest.mark.parametrize("role", ROLES)
def test_only_examiners_and_courts_may_read_findings(exhibits: Exhibits, role: str) -> None:
    disclosure = Disclosure(exhibits.deployment.evidence)
    reader = Actor(id="pr_0000000000000000", role=role)

    if role in ("examiner", "court"):
        texts = disclosure.texts(exhibits.item, reader)
        assert [t.text.decode() for t in texts] == [FINDINGS, NOTE]
        assert may_read_findings(role)
    else:
        with pytest.raises(Forbidden, match="may not read findings and notes"):
            disclosure.texts(exhibits.item, reader)
        assert not may_read_findings(role)
    assert "provider" not in FINDINGS_READERS


# -- (11) names -----------------------------------------------------------------------------------


def test_the_names_of_who_acted_are_checked_against_their_commitments(
    exhibits: Exhibits,
) -> None:
    verification = verify_bundle(exhibits.item_zip, [exhibits.key])

    names = verification.names
    assert names[exhibits.examiner].name == EXAMINER_NAME
    assert names[exhibits.clerk].name == CLERK_NAME  # given later, by principal.named
    assert (names[exhibits.examiner].role, names[exhibits.examiner].kind) == (
        "examiner",
        "principal",
    )
    # the examiner and the clerk, named; the custodian who received the transfer, not
    assert step(verification, 11).startswith("pass: 3 principals (2 with a display name")


def test_a_provider_s_principal_is_named_with_its_provider(exhibits: Exhibits) -> None:
    verification = verify_bundle(exhibits.response_zip, [exhibits.key])

    assert verification.ok, verification.failed
    desk = next(p for p in verification.parties if p.name == DESK_NAME)
    assert desk.provider is not None
    assert verification.names[desk.provider].name == "Own ISP"
    assert verification.names[desk.provider].kind == "provider"


def test_a_changed_name_fails_step_eleven_and_no_name_is_shown(
    exhibits: Exhibits, tmp_path: Path
) -> None:
    case = a_display_name_changed(exhibits, tmp_path)

    verification = verify_bundle(case.bundle, [exhibits.key])

    assert "does not match its name_commitment" in step(verification, 11)
    assert verification.parties == []
    page = render_report(verification)
    assert "Someone Else" not in page and exhibits.examiner in page


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_bundle_verifies_without_disclosures_or_names(
    exhibits: Exhibits, version: int
) -> None:
    bundle = exhibits.item_zip
    if version == 1:
        history = frozenset(n for n in members(bundle) if n.startswith("log/key/"))
        bundle = as_version(bundle, 1, history)
    else:
        bundle = as_version(bundle, 2)

    verification = verify_bundle(bundle, [exhibits.key])

    assert verification.ok, verification.failed
    assert step(verification, 10).startswith(
        f"skipped: not applicable: a custos/exhibit/v{version} bundle discloses no findings"
    )
    assert step(verification, 11).startswith(
        f"skipped: not applicable: a custos/exhibit/v{version} bundle carries no names"
    )
    assert verification.parties == []


# -- the report -----------------------------------------------------------------------------------


def test_the_report_names_people_shows_checked_findings_the_acquisition_and_the_checklist(
    exhibits: Exhibits,
) -> None:
    page = render_report(verify_bundle(exhibits.item_zip, [exhibits.key]))

    assert EXAMINER_NAME in page and CLERK_NAME in page
    assert f'<span class="ident"><span class="mono">{exhibits.examiner}</span>' in page
    assert "CHECKED" in page and "matches the commitment in this event (check 10)" in page
    assert "no tampering with the seal" in page and NOTE in page
    for value in (WARRANT, ACQUISITION["tool"], ACQUISITION["serial"], "2026-11-27 08:15:00 UTC"):
        assert value in page
    assert "Acquisition tool" in page and "Authority (warrant, order)" in page
    assert "The checklist" in page
    for title in BUNDLE_CHECKS:
        assert title in page.replace("&#x27;", "'")
    assert "People and providers" in page
    # the register's words for what an event records
    assert "An examination, with a commitment to its findings." in page


def test_the_report_inside_the_bundle_shows_the_names_too(exhibits: Exhibits) -> None:
    page = members(exhibits.item_zip)["report.html"].decode()

    assert EXAMINER_NAME in page and "CHECKED" in page
