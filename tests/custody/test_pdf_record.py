"""The custody report as a PDF/A-3b record with its exhibit bundle embedded.

Reads the PDF back with poppler-utils (``pdftotext``, ``pdfinfo``, ``pdfdetach``), which
``.ci/run`` installs; without them the test skips, and under ``CI=true`` it fails. Full PDF/A
validation (veraPDF) is not available offline: the test checks the XMP identification, the
embedded file and its relationship, and verifies the attachment as a court would.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from custody.pdf_record import BUNDLE_ATTACHMENT, write_pdf_record
from custody.verify.bundle import verify_bundle
from custody.verify.report import render_report
from storage.deployment import Deployment
from tests.conftest import require
from tests.factories import SEIZURE, in_case

MADE_AT = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


def poppler(tool: str, *args: str) -> str:
    require(shutil.which(tool) is not None, f"{tool} is not installed (Debian poppler-utils)")
    done = subprocess.run([tool, *args], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


@pytest.fixture
def exported(deployment: Deployment) -> tuple[bytes, str]:
    """An item's exhibit bundle (without content) and its custody report."""
    operator = deployment.principals.get("operator").actor
    examiner, _ = deployment.principals.add(
        "examiner-1", "examiner", operator, display_name="Inès Examiner"
    )
    court, _ = deployment.principals.add("clerk", "court", operator)
    in_case(deployment, "C-7", "examiner-1", "clerk")
    metadata = {
        "kind": "physical",
        "case": "C-7",
        "exhibit": "PH-1",
        "description": "a phone",
        "seizure": SEIZURE,
    }
    appended = deployment.intake.register_physical(metadata, examiner.actor)
    out = io.BytesIO()
    summary = deployment.bundles.export([appended.event.subject.id], out, by=court.actor)
    assert summary.verification is not None and summary.verification.ok
    return out.getvalue(), render_report(summary.verification)


def test_the_record_is_pdfa_3b_with_the_report_text_and_the_bundle_that_verifies(
    deployment: Deployment, exported: tuple[bytes, str], tmp_path: Path
) -> None:
    bundle, html = exported
    pdf = tmp_path / "record.pdf"
    with pdf.open("wb") as out:
        write_pdf_record(html, bundle, out, title="Custody report: PH-1", made_at=MADE_AT)

    metadata = poppler("pdfinfo", "-meta", str(pdf))
    assert re.search(r"<pdfaid:part>3</pdfaid:part>|pdfaid:part=\"3\"", metadata), metadata
    assert re.search(r"<pdfaid:conformance>B</pdfaid:conformance>|conformance=\"B\"", metadata)
    text = " ".join(poppler("pdftotext", "-enc", "UTF-8", str(pdf), "-").split())
    assert "Custody report" in text and "PH-1" in text and "VERIFIED" in text
    # who acted, by the name checked against the ledger, the id beside it
    examiner = deployment.principals.get("examiner-1")
    assert "Inès Examiner" in text and examiner.id in text
    listing = poppler("pdfdetach", "-list", str(pdf))
    assert BUNDLE_ATTACHMENT in listing
    detached = tmp_path / "detached.zip"
    poppler("pdfdetach", "-savefile", BUNDLE_ATTACHMENT, "-o", str(detached), str(pdf))
    assert detached.read_bytes() == bundle
    keys = [v.verifier_key() for v in deployment.ledger.keys.verifiers]
    assert verify_bundle(detached.read_bytes(), keys).ok


def test_the_attachment_is_an_associated_file_the_record_names_as_its_source(
    exported: tuple[bytes, str], tmp_path: Path
) -> None:
    """PDF/A-3 requires an embedded file to be associated (/AF) with a relationship."""
    bundle, html = exported
    out = io.BytesIO()
    write_pdf_record(html, bundle, out, title="t", made_at=MADE_AT)
    raw = out.getvalue()
    streams = [raw]
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", raw, re.S):
        try:
            streams.append(zlib.decompress(match.group(1)))
        except zlib.error:
            continue
    everything = b"\n".join(streams)
    assert b"/AFRelationship /Source" in everything or b"/AFRelationship/Source" in everything
    assert b"/AF" in everything
