"""The custody report prints: headless Chromium renders it to an A4 PDF whose text reads back.

Needs Debian's ``chromium`` and ``poppler-utils`` (``.ci/run`` installs them); without them the
test skips, and under ``CI=true`` it fails. Chromium runs with every network feature off and
every host name unresolvable, so the page can only render from what it carries.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from custody.verify.report import render_report
from tests.conftest import require
from tests.custody.test_report import failing_verification

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-first-run",
    "--no-pdf-header-footer",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
TIMEOUT = 90


def print_to_pdf(html_file: Path, pdf: Path, profile: Path) -> None:
    require(shutil.which("chromium") is not None, "chromium is not installed (Debian chromium)")
    subprocess.run(
        [
            "chromium",
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--print-to-pdf={pdf}",
            html_file.as_uri(),
        ],
        capture_output=True,
        timeout=TIMEOUT,
        check=True,
    )


def pdf_tool(tool: str, *args: str) -> str:
    require(shutil.which(tool) is not None, f"{tool} is not installed (Debian poppler-utils)")
    result = subprocess.run(
        [tool, *args], capture_output=True, text=True, timeout=TIMEOUT, check=True
    )
    return result.stdout


def words(text: str) -> str:
    return " ".join(text.split())


def test_the_report_prints_to_an_a4_pdf_with_the_exhibit_digests_steps_and_verdict(
    tmp_path: Path,
) -> None:
    verification = failing_verification()
    html_file, pdf = tmp_path / "report.html", tmp_path / "report.pdf"
    html_file.write_text(render_report(verification), encoding="utf-8")

    print_to_pdf(html_file, pdf, tmp_path / "profile")

    assert "A4" in pdf_tool("pdfinfo", str(pdf))
    # -raw keeps the order Chromium wrote the text in, so a wrapped table cell stays together.
    text = words(pdf_tool("pdftotext", "-raw", "-enc", "UTF-8", str(pdf), "-"))
    unbroken = "".join(text.split())
    assert "Custody report: exhibit HD-1" in text
    assert "NOT VERIFIED" in text
    assert "Check (4) failed" in text
    item = verification.items[0]
    assert item.evidence_id in text
    for digest in item.digests.values():
        assert digest in unbroken
    for step in verification.steps:
        status = {"pass": "PASS", "fail": "FAIL", "skipped": "SKIPPED"}[step.status]
        row = rf"{step.number} {re.escape(step.title)}.*? {status} {re.escape(step.detail)}"
        assert re.search(row, text), f"check ({step.number}) does not read back"
    assert verification.completeness_note in text
    assert "Transferred" in text
