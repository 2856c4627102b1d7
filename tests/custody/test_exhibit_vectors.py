"""The verifier on the committed reference bundles of tests/vectors/exhibit-v1: the sound ones
pass every step and each tampered copy fails first at the step its README names, at its item
and event. These files were written once; a format change goes in exhibit-v2 beside them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.note import NoteSigner
from custody.verify import ExhibitVerificationFailed, VerificationError, verify_bundle

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "exhibit-v1"
INDEX: dict[str, Any] = json.loads((VECTORS / "vectors.json").read_text("utf-8"))
KEY = (VECTORS / INDEX["key"]).read_text("ascii").strip()


@pytest.mark.parametrize("bundle", sorted(INDEX["sound"].values()))
def test_a_reference_bundle_passes_every_step(bundle: str) -> None:
    verification = verify_bundle(VECTORS / bundle, [KEY])
    assert verification.ok, verification.failed
    assert {step.status for step in verification.steps} <= {"pass", "skipped"}
    verification.raise_if_failed()


@pytest.mark.parametrize("case", sorted(INDEX["tampered"]))
def test_a_tampered_reference_bundle_fails_at_its_step(case: str) -> None:
    vector = INDEX["tampered"][case]
    known = vector["known_checkpoint"]

    verification = verify_bundle(
        VECTORS / vector["bundle"],
        [KEY],
        artifact=VECTORS / vector["artifact"] if vector["artifact"] else None,
        known_checkpoint=(VECTORS / known).read_bytes() if known else None,
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


def test_a_reference_bundle_does_not_verify_with_a_key_it_was_not_signed_with() -> None:
    other = NoteSigner(KEY.split("+")[0], Ed25519PrivateKey.generate()).verifier.verifier_key()
    with pytest.raises(ExhibitVerificationFailed, match=r"check \(2\) failed"):
        verify_bundle(VECTORS / INDEX["sound"]["item"], [other]).raise_if_failed()
