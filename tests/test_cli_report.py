"""``custos report``: an item's exhibit bundle, verified with the deployment's own keys, as the
printable custody report."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from custody.verify.bundle import verify_bundle
from tests.conftest import Home, require
from tests.factories import failed, in_case, json_object

CONTENT = b"seized laptop sector " * 2_000
SHA256 = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture
def item(runner: CliRunner, home: Home, tmp_path: Path) -> str:
    """An image ingested and transferred once by the examiner ``alice``."""
    operator = home.deployment.principals.get("operator")
    home.deployment.principals.add("alice", "examiner", operator.actor)
    in_case(home.deployment, "C-7", "alice")
    image = tmp_path / "laptop.E01"
    image.write_bytes(CONTENT)
    ingest = ["ingest", str(image), "--case", "C-7", "--exhibit", "HD-1", "--as", "alice"]
    evidence_id = str(json_object(runner.invoke(main, [*ingest, "--json"]))["id"])
    fields = ["-f", "from=lab", "-f", "to=alice", "-f", "location=room 2", "-f", "reason=storage"]
    transfer = ["evidence", "event", evidence_id, "transferred", *fields, "--as", "alice"]
    json_object(runner.invoke(main, [*transfer, "--json"]))
    return evidence_id


def test_report_writes_the_verified_custody_report_and_records_nothing(
    runner: CliRunner, home: Home, item: str, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    size = home.deployment.ledger.size()

    summary = json_object(
        runner.invoke(main, ["report", item, "-o", str(out), "--as", "alice", "--json"])
    )

    assert summary["ok"] is True and summary["items"] == [item]
    assert summary["path"] == str(out)
    html = out.read_text(encoding="utf-8")
    assert "NOT VERIFIED" not in html and ">VERIFIED<" in html
    for expected in (item, SHA256, "C-7", "HD-1", "Transferred", "room 2", "storage"):
        assert expected in html
    assert "<script" not in html
    assert home.deployment.ledger.size() == size


def test_report_writes_the_page_the_exported_bundle_carries(
    runner: CliRunner, home: Home, item: str, tmp_path: Path
) -> None:
    operator = home.deployment.principals.get("operator")
    home.deployment.principals.add("clerk", "court", operator.actor)
    in_case(home.deployment, "C-7", "clerk")
    out, exhibit = tmp_path / "report.html", tmp_path / "exhibit.zip"

    json_object(runner.invoke(main, ["report", item, "-o", str(out), "--as", "alice", "--json"]))
    exported = ["export", item, "-o", str(exhibit), "--as", "clerk", "--json"]
    json_object(runner.invoke(main, exported))

    with zipfile.ZipFile(exhibit) as archive:
        assert archive.read("report.html") == out.read_bytes()


def test_report_prints_the_verdict_and_where_it_wrote(
    runner: CliRunner, item: str, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"

    result = runner.invoke(main, ["report", item, "-o", str(out), "--as", "alice"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("VERIFIED") and str(out) in result.output


def test_report_of_a_tampered_store_says_not_verified_and_exits_1(
    runner: CliRunner, home: Home, item: str, tmp_path: Path
) -> None:
    [manifest] = home.config.home.rglob(f"manifests/{item}")
    os.chmod(manifest, stat.S_IRUSR | stat.S_IWUSR)
    manifest.write_bytes(manifest.read_bytes().replace(b"C-7", b"C-8"))
    out = tmp_path / "report.html"

    result = runner.invoke(main, ["report", item, "-o", str(out), "--as", "alice", "--json"])

    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["ok"] is False and 6 in summary["failed_steps"]
    assert "NOT VERIFIED" in out.read_text(encoding="utf-8")


def test_report_refuses_an_unknown_item_and_writes_nothing(
    runner: CliRunner, item: str, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"

    message = failed(
        runner.invoke(main, ["report", "ev_0000000000000000", "-o", str(out), "--as", "alice"])
    )

    assert "ev_0000000000000000" in message
    assert not out.exists()


def test_report_refuses_a_principal_who_may_not_export(
    runner: CliRunner, item: str, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"

    message = failed(runner.invoke(main, ["report", item, "-o", str(out)]))

    assert "export" in message
    assert not out.exists()


def test_report_pdf_writes_a_pdfa_record_whose_embedded_bundle_verifies(
    runner: CliRunner, home: Home, item: str, tmp_path: Path
) -> None:
    out = tmp_path / "report.pdf"

    summary = json_object(
        runner.invoke(main, ["report", item, "-o", str(out), "--pdf", "--as", "alice", "--json"])
    )

    assert summary["ok"] is True and summary["path"] == str(out)
    assert out.read_bytes().startswith(b"%PDF-")
    require(shutil.which("pdfdetach") is not None, "pdfdetach is not installed (poppler-utils)")
    meta = subprocess.run(
        ["pdfinfo", "-meta", str(out)], check=True, capture_output=True, text=True, timeout=60
    )
    assert "pdfaid" in meta.stdout
    detached = tmp_path / "exhibit.zip"
    subprocess.run(
        ["pdfdetach", "-savefile", "exhibit.zip", "-o", str(detached), str(out)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    keys = [v.verifier_key() for v in home.deployment.ledger.keys.verifiers]
    verification = verify_bundle(detached.read_bytes(), keys)
    assert verification.ok
    assert [i.evidence_id for i in verification.items] == [item]
    assert not list(tmp_path.glob("*.part"))
