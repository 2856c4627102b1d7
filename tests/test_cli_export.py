"""Tests of ``custos export``: exhibit bundles on the local home (with content and a known
checkpoint), the CASE format, and clean refusals that leave no file behind."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli import main
from custody.events import Event
from custody.verify.bundle import verify_bundle
from storage.deployment import Deployment
from tests.conftest import Home
from tests.factories import failed, in_case, ok

CONTENT = b"\x7fELF forensic image " * 4_000


@pytest.fixture
def people(home: Home) -> dict[str, str]:
    principals = home.deployment.principals
    operator = principals.get("operator").actor
    for name, role in (("alice", "examiner"), ("clerk", "court"), ("judge", "approver")):
        principals.add(name, role, operator)
    in_case(home.deployment, "C-1", "alice", "clerk", "judge")
    return {"examiner": "alice", "court": "clerk", "approver": "judge"}


@pytest.fixture
def item(runner: CliRunner, people: dict[str, str], tmp_path: Path) -> str:
    image = tmp_path / "laptop.E01"
    image.write_bytes(CONTENT)
    args = ["ingest", str(image), "--case", "C-1", "--exhibit", "HD-1", "--json"]
    result = ok(runner.invoke(main, [*args, "--as", people["examiner"]]))
    evidence_id: str = json.loads(result.stdout)["id"]
    return evidence_id


def export(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(main, ["export", *args])


def test_export_writes_the_bundle_the_writer_gives(
    runner: CliRunner, deployment: Deployment, people: dict[str, str], item: str, tmp_path: Path
) -> None:
    output = tmp_path / "exhibit.zip"

    result = ok(export(runner, item, "-o", str(output), "--as", people["court"], "--json"))

    summary = json.loads(result.stdout)
    assert summary["path"] == str(output) and summary["items"] == [item]
    assert summary["format"] == "custos/exhibit/v3" and summary["accessed"] == []
    assert summary["verified"] is True
    direct = io.BytesIO()
    deployment.bundles.export([item], direct, by=deployment.principals.get("clerk").actor)
    assert output.read_bytes() == direct.getvalue()
    assert not list(tmp_path.glob("*.part"))


def test_export_with_content_and_a_known_checkpoint(
    runner: CliRunner, deployment: Deployment, people: dict[str, str], item: str, tmp_path: Path
) -> None:
    known = tmp_path / "known.checkpoint"
    known.write_bytes(deployment.ledger.checkpoint(covering=0).note)
    output = tmp_path / "exhibit.zip"

    result = ok(
        export(
            runner,
            item,
            "-o",
            str(output),
            "--with-content",
            "--known-checkpoint",
            str(known),
            "--as",
            people["examiner"],
        )
    )

    archive = zipfile.ZipFile(output)
    assert archive.read(f"items/{item}/content") == CONTENT
    assert archive.namelist()[-1] == "report.html"
    report = archive.read("report.html").decode("utf-8")
    assert ">VERIFIED<" in report and "the content is verified by the court" in report
    assert "the service's own check: VERIFIED" in result.stdout
    assert archive.read("known-checkpoint") == known.read_bytes()
    assert "consistency" in archive.namelist()
    events = [
        Event.decode(archive.read(n))
        for n in archive.namelist()
        if n.startswith(f"items/{item}/events/")
    ]
    assert events[-1].type == "evidence.accessed"
    sha256 = hashlib.sha256(CONTENT).hexdigest()  # what the bytes re-hashed to
    assert events[-1].data == {"purpose": "exhibit export", "digests": {"sha256": sha256}}
    assert f"evidence.accessed #{deployment.ledger.size() - 1}" in result.stdout


def test_export_refuses_a_role_that_may_not_and_leaves_no_file(
    runner: CliRunner, people: dict[str, str], item: str, tmp_path: Path
) -> None:
    output = tmp_path / "exhibit.zip"

    for who in (people["approver"], "operator"):
        message = failed(export(runner, item, "-o", str(output), "--as", who))
        assert "may not export" in message

    assert list(tmp_path.glob("exhibit.zip*")) == []


def test_export_refuses_an_unknown_item_and_a_bad_known_checkpoint(
    runner: CliRunner, people: dict[str, str], item: str, tmp_path: Path
) -> None:
    output = tmp_path / "exhibit.zip"
    bad = tmp_path / "bad.checkpoint"
    bad.write_bytes(b"not a checkpoint\n")
    court = ("--as", people["court"])

    unknown = failed(export(runner, "ev_0000000000000000", "-o", str(output), *court))
    forged = failed(export(runner, item, "-o", str(output), "--known-checkpoint", str(bad), *court))

    assert "ev_0000000000000000" in unknown
    assert "known checkpoint" in forged
    assert list(tmp_path.glob("exhibit.zip*")) == []


def test_export_in_case_format_writes_the_items_provenance(
    runner: CliRunner, deployment: Deployment, people: dict[str, str], item: str, tmp_path: Path
) -> None:
    output = tmp_path / "exhibit.jsonld"

    ok(export(runner, item, "--format", "case", "-o", str(output), "--as", people["court"]))

    document: dict[str, Any] = json.loads(output.read_text("utf-8"))
    types = [node["@type"] for node in document["@graph"]]
    events = deployment.ledger.subject_entries(f"evidence:{item}")
    assert types.count("case-investigation:InvestigativeAction") == len(events)


def test_case_format_takes_one_item_and_no_bundle_options(
    runner: CliRunner, people: dict[str, str], item: str, tmp_path: Path
) -> None:
    output = str(tmp_path / "exhibit.jsonld")
    court = ("--as", people["court"])

    for extra in ([item], ["--with-content"]):
        message = failed(export(runner, item, *extra, "--format", "case", "-o", output, *court))
        assert "--format case takes one evidence id" in message


def test_export_against_a_server_writes_the_bundle_the_server_makes(
    runner: CliRunner,
    deployment: Deployment,
    home: Home,
    people: dict[str, str],
    item: str,
    server_url: str,
    tmp_path: Path,
) -> None:
    operator = deployment.principals.get("operator").actor
    token = deployment.principals.add("bailiff", "court", operator)[1]
    in_case(deployment, "C-1", "bailiff")
    output = tmp_path / "exhibit.zip"
    remote = ["--server", server_url, "--token", token]

    result = ok(export(runner, item, "-o", str(output), *remote, "--json"))

    assert json.loads(result.stdout)["items"] == [item]
    direct = io.BytesIO()
    deployment.bundles.export([item], direct, by=deployment.principals.get("bailiff").actor)
    assert output.read_bytes() == direct.getvalue()
    refused = failed(export(runner, item, "-o", str(tmp_path / "x.zip"), "--server", server_url))
    assert "--token" in refused
    examiner_only = deployment.principals.add("viewer", "authority", operator)[1]
    args = [item, "-o", str(tmp_path / "z.zip"), "--server", server_url, "--token", examiner_only]
    assert "403" in failed(export(runner, *args)) or "may not" in failed(export(runner, *args))
    assert not list(tmp_path.glob("*.part")) and not (tmp_path / "z.zip").exists()


def test_export_against_a_server_bundles_several_items_and_a_kept_checkpoint(
    runner: CliRunner,
    deployment: Deployment,
    people: dict[str, str],
    item: str,
    server_url: str,
    tmp_path: Path,
) -> None:
    operator = deployment.principals.get("operator").actor
    token = deployment.principals.add("bailiff", "court", operator)[1]
    in_case(deployment, "C-1", "bailiff")
    known = tmp_path / "kept.txt"
    known.write_bytes(deployment.ledger.checkpoint().note)
    second = tmp_path / "phone.bin"
    second.write_bytes(b"a phone extraction")
    args = ["ingest", str(second), "--case", "C-1", "--exhibit", "PH-1", "--json"]
    other = json.loads(ok(runner.invoke(main, [*args, "--as", people["examiner"]])).stdout)["id"]
    output = tmp_path / "exhibit.zip"

    result = ok(
        export(
            runner,
            item,
            other,
            "-o",
            str(output),
            "--server",
            server_url,
            "--token",
            token,
            "--known-checkpoint",
            str(known),
            "--json",
        )
    )

    assert json.loads(result.stdout)["items"] == [item, other]
    keys = [v.verifier_key() for v in deployment.ledger.keys.verifiers]
    verification = verify_bundle(output.read_bytes(), keys, known_checkpoint=known.read_bytes())
    assert verification.ok
    assert [i.evidence_id for i in verification.items] == sorted([item, other])
    passed = {step.number for step in verification.steps if step.status == "pass"}
    assert 8 in passed
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("not a checkpoint")
    args = [item, "-o", str(tmp_path / "g.zip"), "--server", server_url, "--token", token]
    assert "not a checkpoint" in failed(export(runner, *args, "--known-checkpoint", str(garbage)))
    assert not (tmp_path / "g.zip").exists()
