"""``custos audit --objects``: the scrub from the command line, for people and for programs."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from cli import main
from custody.evidence import EvidenceRecord, blob_key
from storage.deployment import Deployment
from tests.conftest import Home
from tests.factories import in_case

DIGITAL = {"kind": "digital", "case": "C-1", "exhibit": "E-1", "description": "disk image"}


def ingest(deployment: Deployment, content: bytes, exhibit: str = "E-1") -> EvidenceRecord:
    operator = deployment.principals.get("operator").actor
    examiner = deployment.principals.add(f"examiner-{exhibit.lower()}", "examiner", operator)[
        0
    ].actor
    in_case(deployment, "C-1", f"examiner-{exhibit.lower()}")
    session = deployment.intake.open_session({**DIGITAL, "exhibit": exhibit}, examiner)
    return deployment.intake.receive(session.id, io.BytesIO(content), examiner).record


def blob_file(home: Home, record: EvidenceRecord) -> Path:
    assert record.storage_key is not None
    return home.config.home / "objects" / record.storage_key


def lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_audit_objects_passes_a_healthy_home_and_says_what_it_read(
    runner: CliRunner, home: Home
) -> None:
    ingest(home.deployment, b"a" * 4096, "E-1")
    ingest(home.deployment, b"b" * 1024, "E-2")

    result = runner.invoke(main, ["audit", "--objects"])

    assert result.exit_code == 0, (result.output, result.exception)
    ledger_line, objects_line = result.stdout.splitlines()
    assert ledger_line.startswith("ok: ")
    assert objects_line.startswith("ok: 2 records, 2 blobs (0.0 MiB read")
    assert objects_line.endswith("2 manifests")


def test_audit_objects_json_gives_a_line_per_blob_then_the_summary(
    runner: CliRunner, home: Home
) -> None:
    first = ingest(home.deployment, b"a" * 4096, "E-1")
    second = ingest(home.deployment, b"b" * 1024, "E-2")

    result = runner.invoke(main, ["audit", "--objects", "--json"])

    assert result.exit_code == 0, (result.output, result.exception)
    planned, *checked, summary = lines(result)
    assert planned == {"scrub": "planned", "records": 2, "blobs": 2, "bytes": 5120}
    assert [(c["evidence_id"], c["key"], c["size"], c["ok"]) for c in checked] == [
        (first.id, first.storage_key, 4096, True),
        (second.id, second.storage_key, 1024, True),
    ]
    assert checked[-1]["read"] == checked[-1]["total"] == 5120
    assert summary["ok"] is True and summary["size"] == home.deployment.ledger.size()
    objects = summary["objects"]
    assert (objects["records"], objects["blobs"], objects["bytes"]) == (2, 2, 5120)
    assert (objects["findings"], objects["warnings"]) == ([], [])


def test_audit_without_objects_reads_no_blob(runner: CliRunner, home: Home) -> None:
    record = ingest(home.deployment, b"content")
    blob_file(home, record).unlink()

    result = runner.invoke(main, ["audit", "--json"])

    assert result.exit_code == 0
    [summary] = lines(result)
    assert "objects" not in summary


def test_a_changed_blob_fails_the_audit_naming_the_item_and_its_key(
    runner: CliRunner, home: Home
) -> None:
    record = ingest(home.deployment, b"original bytes")
    path = blob_file(home, record)
    path.chmod(0o644)
    path.write_bytes(b"Original bytes")

    text = runner.invoke(main, ["audit", "--objects"])
    as_json = runner.invoke(main, ["audit", "--objects", "--json"])

    assert text.exit_code == as_json.exit_code == 1
    assert f"FAIL {record.id} {record.storage_key}: blob differs from its record" in text.stderr
    *_, checked, summary = lines(as_json)
    assert (checked["evidence_id"], checked["ok"]) == (record.id, False)
    assert summary["ok"] is False and summary["findings"] == []  # the ledger itself is fine
    [finding] = summary["objects"]["findings"]
    assert finding["evidence"] == record.id and finding["key"] == record.storage_key
    assert finding["severity"] == "failure"


def test_an_orphan_is_a_warning_and_the_audit_still_passes(runner: CliRunner, home: Home) -> None:
    ingest(home.deployment, b"recorded")
    orphan = home.config.home / "objects" / blob_key("cd" * 32)
    orphan.write_bytes(b"left by a crash")
    orphan.chmod(0o400)  # as the store leaves what it wrote

    result = runner.invoke(main, ["audit", "--objects"])

    assert result.exit_code == 0, (result.output, result.exception)
    assert f"WARN {blob_key('cd' * 32)}: orphan" in result.stderr
