"""The verifier on the committed reference bundles of tests/vectors/exhibit-v1, -v2 and -v3 (one
folder per format Custos has written): the sound ones pass every step and each tampered copy
fails first at the step its README names, at its item and event. These files were written
once; a format change goes in a new folder beside them, and the old ones must keep verifying."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.note import NoteSigner
from custody.verify import ExhibitVerificationFailed, VerificationError, verify_bundle

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
FORMATS = ("exhibit-v1", "exhibit-v2", "exhibit-v3")


def index_of(folder: str) -> dict[str, Any]:
    index: dict[str, Any] = json.loads((VECTORS / folder / "vectors.json").read_text("utf-8"))
    return index


def key_of(folder: str) -> str:
    return (VECTORS / folder / index_of(folder)["key"]).read_text("ascii").strip()


SOUND = [(f, b) for f in FORMATS for b in sorted(index_of(f)["sound"].values())]
TAMPERED = [(f, c) for f in FORMATS for c in sorted(index_of(f)["tampered"])]


@pytest.mark.parametrize(("folder", "bundle"), SOUND)
def test_a_reference_bundle_passes_every_step(folder: str, bundle: str) -> None:
    verification = verify_bundle(VECTORS / folder / bundle, [key_of(folder)])
    assert verification.ok, verification.failed
    assert {step.status for step in verification.steps} <= {"pass", "skipped"}
    verification.raise_if_failed()


@pytest.mark.parametrize(("folder", "case"), TAMPERED)
def test_a_tampered_reference_bundle_fails_at_its_step(folder: str, case: str) -> None:
    vector = index_of(folder)["tampered"][case]
    known = vector["known_checkpoint"]
    here = VECTORS / folder

    verification = verify_bundle(
        here / vector["bundle"],
        [key_of(folder)],
        artifact=here / vector["artifact"] if vector["artifact"] else None,
        known_checkpoint=(here / known).read_bytes() if known else None,
    )

    first = verification.failed[0] if verification.failed else None
    assert first is not None, f"{case} verified"
    assert (first.number, first.evidence_id, first.event_index) == (
        vector["step"],
        vector["evidence_id"],
        vector["event_index"],
    )
    with pytest.raises(ExhibitVerificationFailed) as raised:
        verification.raise_if_failed()
    assert isinstance(raised.value, VerificationError)
    assert raised.value.step == vector["step"] and raised.value.failed == verification.failed


@pytest.mark.parametrize("folder", FORMATS)
def test_a_reference_bundle_does_not_verify_with_a_key_it_was_not_signed_with(
    folder: str,
) -> None:
    name = key_of(folder).split("+")[0]
    other = NoteSigner(name, Ed25519PrivateKey.generate()).verifier.verifier_key()
    item = VECTORS / folder / index_of(folder)["sound"]["item"]
    with pytest.raises(ExhibitVerificationFailed, match=r"check \(2\) failed"):
        verify_bundle(item, [other]).raise_if_failed()


@pytest.mark.parametrize("folder", ["exhibit-v1", "exhibit-v2"])
def test_an_older_reference_bundle_discloses_nothing_and_names_nobody(folder: str) -> None:
    verification = verify_bundle(
        VECTORS / folder / index_of(folder)["sound"]["item"], [key_of(folder)]
    )

    late = {step.number: step.status for step in verification.steps if step.number >= 10}
    assert late == {10: "skipped", 11: "skipped"}
    assert verification.parties == []


def test_a_version_3_reference_bundle_discloses_its_findings_and_names_who_acted() -> None:
    folder = "exhibit-v3"
    verification = verify_bundle(
        VECTORS / folder / index_of(folder)["sound"]["item"], [key_of(folder)]
    )

    (item,) = verification.items
    assert sum(1 for event in item.events if event.disclosed) == 2
    assert {party.name for party in verification.parties} >= {"Alice Ndiaye-Okafor"}
