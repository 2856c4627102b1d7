"""Tests of the evidence commands of ``custos`` (commands/evidence.py): ``ingest``,
``evidence ...`` and ``verify-receipt``, on the local home and against a real server over HTTP."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main
from commands.sources import StableFile
from custody.acts import ACT_FIELDS
from custody.audit import audit_ledger
from custody.errors import FieldErrors
from custody.events import SYSTEM, Event
from storage.deployment import Deployment
from tests.conftest import Home
from tests.factories import SEIZURE, failed, in_case, json_lines, json_object, ok

CONTENT = b"\x7fELF forensic image " * 4_000  # ~80 KB
SHA256 = hashlib.sha256(CONTENT).hexdigest()
MD5 = hashlib.md5(CONTENT).hexdigest()
# The cases the tests' items go into.
CASES = ("C", "C-1", "C-2", "C-9")
# A physical item's seizure, as ``custos evidence register`` takes it.
SEIZED = [f"--seizure-{name}={value}" for name, value in SEIZURE.items()]


def state_of(deployment: Deployment) -> tuple[int, list[str], list[str]]:
    """Ledger size, evidence ids and blob keys: what a refused command must not change."""
    records = [r.id for r in deployment.evidence.list(None, None, 1000, None)]
    return deployment.ledger.size(), records, sorted(deployment.objects.keys("blobs/"))


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "laptop.E01"
    path.write_bytes(CONTENT)
    return path


@pytest.fixture
def examiner(home: Home) -> str:
    """The name of an examiner principal, for ``--as``, a member of the tests' cases."""
    operator = home.deployment.principals.get("operator")
    home.deployment.principals.add("alice", "examiner", operator.actor)
    for case in CASES:
        in_case(home.deployment, case, "alice")
    return "alice"


@pytest.fixture
def approver(home: Home, examiner: str) -> str:
    operator = home.deployment.principals.get("operator")
    home.deployment.principals.add("judge", "approver", operator.actor)
    for case in CASES:
        in_case(home.deployment, case, "judge")
    return "judge"


def ingest(runner: CliRunner, path: Path, examiner: str, *extra: str) -> dict[str, Any]:
    args = ["ingest", str(path), "--case", "C-1", "--exhibit", "HD-1", "--as", examiner, "--json"]
    return json_object(runner.invoke(main, [*args, *extra]))


# -- ingest --------------------------------------------------------------------------------------


def test_ingest_prints_the_id_digests_and_ledger_index(
    runner: CliRunner, home: Home, examiner: str, image: Path
) -> None:
    size = home.deployment.ledger.size()

    done = ingest(
        runner,
        image,
        examiner,
        "--expect",
        f"sha256:{SHA256}",
        "--expect",
        f"MD5:{MD5.upper()}",
        "--tool",
        "FTK Imager 4.7",
        "--acquired-by",
        "alice",
        "--authority",
        "W-2026-17",
    )

    assert done["digests"] == {"sha256": SHA256, "md5": MD5}
    assert done["ledger_index"] == size
    assert done["path"] == str(image) and done["size"] == len(CONTENT)
    record = home.deployment.handling.get(done["id"], SYSTEM)
    assert record.case == "C-1" and record.exhibit == "HD-1"
    assert record.description["acquisition"]["tool"] == "FTK Imager 4.7"
    assert record.description["authority"] == "W-2026-17"
    event = Event.decode(home.deployment.ledger.entry(size))
    assert event.type == "evidence.ingested" and event.subject.id == done["id"]
    assert home.deployment.objects.get(record.storage_key or "") == CONTENT


def test_ingest_without_json_prints_one_line_per_file(
    runner: CliRunner, home: Home, examiner: str, image: Path, tmp_path: Path
) -> None:
    second = tmp_path / "phone.bin"
    second.write_bytes(b"phone extraction")

    result = ok(
        runner.invoke(
            main,
            [
                "ingest",
                str(image),
                str(second),
                "--case",
                "C-1",
                "--exhibit",
                "X",
                "--as",
                examiner,
            ],
        )
    )

    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert f"sha256:{SHA256}" in lines[0] and lines[0].endswith(image.name)
    assert lines[0].startswith("X-1  ") and lines[1].startswith("X-2  ")
    exhibits = sorted(r.exhibit for r in home.deployment.evidence.list(None, None, 10, None))
    assert exhibits == ["X-1", "X-2"]


@pytest.mark.parametrize(
    "expect",
    [f"sha256:{'0' * 64}", f"md5:{'f' * 32}", f"sha1:{'a' * 40}"],
    ids=["sha256", "md5", "sha1"],
)
def test_a_wrong_expected_digest_fails_and_records_nothing(
    runner: CliRunner, home: Home, examiner: str, image: Path, expect: str
) -> None:
    before = state_of(home.deployment)

    message = failed(
        runner.invoke(
            main,
            [
                "ingest",
                str(image),
                "--case",
                "C-1",
                "--exhibit",
                "HD-1",
                "--as",
                examiner,
                "--expect",
                f"sha256:{SHA256}",
                "--expect",
                expect,
            ],
        )
    )

    assert "mismatch" in message and "nothing was recorded" in message
    assert state_of(home.deployment) == before


@pytest.mark.parametrize("expect", ["sha256", "sha256:xyz", "crc32:00000000", f"md5:{SHA256}"])
def test_a_malformed_expected_digest_is_a_usage_error(
    runner: CliRunner, home: Home, examiner: str, image: Path, expect: str
) -> None:
    before = state_of(home.deployment)

    result = runner.invoke(
        main,
        [
            "ingest",
            str(image),
            "--case",
            "C",
            "--exhibit",
            "E",
            "--as",
            examiner,
            "--expect",
            expect,
        ],
    )

    assert result.exit_code == 2, result.output
    assert "--expect" in result.output
    assert state_of(home.deployment) == before


def test_the_receipt_from_ingest_verifies_offline(
    runner: CliRunner, home: Home, examiner: str, image: Path, tmp_path: Path
) -> None:
    done = ingest(runner, image, examiner)
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps(done["receipt"]), encoding="utf-8")
    key = home.deployment.keys.current.verifier_key

    verified = runner.invoke(main, ["verify-receipt", str(receipt), "--key", key, "--json"])

    report = json_object(verified)
    assert json.dumps(report).count(done["id"]) >= 1
    receipt.write_text(json.dumps({**done["receipt"], "leaf": done["receipt"]["leaf"][::-1]}))
    assert runner.invoke(main, ["verify-receipt", str(receipt), "--key", key]).exit_code == 1


def test_verify_receipt_checks_the_artifact_against_the_receipt(
    runner: CliRunner, home: Home, examiner: str, image: Path, tmp_path: Path
) -> None:
    done = ingest(runner, image, examiner)
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps(done["receipt"]), encoding="utf-8")
    key = home.deployment.keys.current.verifier_key
    altered = tmp_path / "altered.E01"
    altered.write_bytes(CONTENT[:-1] + b"?")

    held = runner.invoke(
        main, ["verify-receipt", str(receipt), "--key", key, "--artifact", str(image)]
    )
    other = runner.invoke(
        main, ["verify-receipt", str(receipt), "--key", key, "--artifact", str(altered), "--json"]
    )

    assert held.exit_code == 0, held.output
    assert "(6) ok" in held.stdout
    assert other.exit_code == 1
    refused = json.loads(other.stdout)
    assert refused["failed_step"] == 6 and "not the bytes that were received" in refused["error"]


# -- evidence register, list, show, custody, event, download -------------------------------------


def test_the_evidence_commands_work_together(
    runner: CliRunner, home: Home, examiner: str, approver: str, image: Path, tmp_path: Path
) -> None:
    as_examiner = ["--as", examiner, "--json"]
    phone = json_object(
        runner.invoke(
            main,
            [
                "evidence",
                "register",
                "--case",
                "C-1",
                "--exhibit",
                "PH-1",
                "--description",
                "seized phone",
                "--authority",
                "W-17",
                *SEIZED,
                *as_examiner,
            ],
        )
    )
    assert phone["kind"] == "physical" and phone["state"]["sealed"] is False
    disk = ingest(runner, image, examiner, "--parent", phone["id"])
    other = json_object(
        runner.invoke(
            main,
            [
                "evidence",
                "register",
                "--case",
                "C-2",
                "--exhibit",
                "PH-9",
                "--description",
                "tablet",
                *SEIZED,
                *as_examiner,
            ],
        )
    )

    listed = json_lines(runner.invoke(main, ["evidence", "list", "--case", "C-1", *as_examiner]))
    assert [i["id"] for i in listed] == [phone["id"], disk["id"]]
    everything = json_lines(runner.invoke(main, ["evidence", "list", *as_examiner]))
    assert [i["id"] for i in everything] == [phone["id"], disk["id"], other["id"]]
    text = ok(runner.invoke(main, ["evidence", "list", "--exhibit", "PH-9", "--as", examiner]))
    header, row = text.stdout.splitlines()
    assert header.split() == ["ID", "KIND", "CASE", "EXHIBIT", "STATE", "DESCRIPTION"]
    assert row.split() == [other["id"], "physical", "C-2", "PH-9", "in", "custody", "tablet"]

    shown = json_object(runner.invoke(main, ["evidence", "show", disk["id"], *as_examiner]))
    assert shown["parent"] == phone["id"] and shown["digests"]["sha256"] == SHA256

    sealed = json_object(
        runner.invoke(
            main,
            [
                "evidence",
                "event",
                phone["id"],
                "sealed",
                "-f",
                "seal=S-1",
                *as_examiner,
            ],
        )
    )
    assert sealed["event"]["type"] == "evidence.sealed" and sealed["state"]["sealed"] is True
    moved = json_object(
        runner.invoke(
            main,
            [
                "evidence",
                "event",
                disk["id"],
                "transferred",
                "-f",
                "from=lab",
                "-f",
                "to=alice",
                "-f",
                "location=room 2",
                "-f",
                "reason=storage",
                *as_examiner,
            ],
        )
    )
    assert moved["event"]["data"] == {
        "from": "lab",
        "to": home.deployment.principals.get("alice").id,
        "location": "room 2",
        "reason": "storage",
    }

    output = tmp_path / "copy.E01"
    got = json_object(
        runner.invoke(
            main,
            [
                "evidence",
                "download",
                disk["id"],
                "--purpose",
                "defence copy",
                "-o",
                str(output),
                *as_examiner,
            ],
        )
    )
    assert output.read_bytes() == CONTENT
    assert got["digests"]["sha256"] == SHA256
    assert not output.with_name(output.name + ".part").exists()

    history = json_lines(runner.invoke(main, ["evidence", "custody", disk["id"], *as_examiner]))
    assert [e["type"] for e in history] == [
        "evidence.ingested",
        "evidence.transferred",
        "evidence.accessed",
    ]
    assert history[-1]["index"] == got["access_index"]
    assert history[-1]["data"] == {"purpose": "defence copy", "digests": {"sha256": SHA256}}
    assert history[-1]["actor"]["role"] == "examiner"
    readable = ok(runner.invoke(main, ["evidence", "custody", disk["id"], "--as", examiner]))
    assert "Content read [evidence.accessed]" in readable.stdout
    assert "purpose defence copy" in readable.stdout

    disposed = json_object(
        runner.invoke(
            main,
            [
                "evidence",
                "event",
                other["id"],
                "disposed",
                "-f",
                "authority=order 5",
                "-f",
                "method=returned",
                "--as",
                approver,
                "--json",
            ],
        )
    )
    assert disposed["state"]["disposed"] is True

    audit = json_object(runner.invoke(main, ["audit", "--json"]))
    assert audit["ok"] is True and audit["size"] == home.deployment.ledger.size()


def test_a_refused_act_fails_cleanly_and_changes_nothing(
    runner: CliRunner, home: Home, examiner: str
) -> None:
    item = json_object(
        runner.invoke(
            main,
            [
                "evidence",
                "register",
                "--case",
                "C",
                "--exhibit",
                "E",
                "--description",
                "box",
                *SEIZED,
                "--as",
                examiner,
                "--json",
            ],
        )
    )
    sealing = ["evidence", "event", item["id"], "sealed", "-f", "seal=S-9", "--as", examiner]
    ok(runner.invoke(main, sealing))
    before = state_of(home.deployment)

    refused = failed(
        runner.invoke(
            main,
            [
                "evidence",
                "event",
                item["id"],
                "checked_out",
                "-f",
                "to=bob",
                "-f",
                "purpose=x",
                "-f",
                "authority=y",
                "--as",
                examiner,
            ],
        )
    )
    forbidden = failed(
        runner.invoke(
            main,
            [
                "evidence",
                "event",
                item["id"],
                "disposed",
                "-f",
                "authority=a",
                "-f",
                "method=m",
                "--as",
                examiner,
            ],
        )
    )

    assert "not allowed" in refused and "approver" in forbidden
    assert state_of(home.deployment) == before
    assert home.deployment.handling.get(item["id"], SYSTEM).state.sealed


@pytest.mark.parametrize(
    ("act", "fields", "named"),
    [
        ("examined", ["tool=X-Ways"], "findings"),
        ("transferred", ["from=a", "to=b", "location=c"], "reason"),
        ("sealed", ["suspect=John Doe"], "suspect"),
        ("noted", ["text="], "text"),
    ],
    ids=["missing-findings", "missing-reason", "unknown-field", "empty-text"],
)
def test_an_invalid_act_fails_cleanly_naming_the_field_and_records_nothing(
    runner: CliRunner, home: Home, examiner: str, act: str, fields: list[str], named: str
) -> None:
    item = json_object(
        runner.invoke(
            main,
            [
                "evidence",
                "register",
                "--case",
                "C",
                "--exhibit",
                "E",
                "--description",
                "box",
                *SEIZED,
                "--as",
                examiner,
                "--json",
            ],
        )
    )
    before = state_of(home.deployment)
    options = [x for field in fields for x in ("-f", field)]

    message = failed(
        runner.invoke(
            main,
            [
                "evidence",
                "event",
                item["id"],
                act,
                *options,
                "--as",
                examiner,
            ],
        )
    )

    assert named in message
    assert state_of(home.deployment) == before
    assert b"John Doe" not in b"".join(
        home.deployment.ledger.entry(i) for i in range(home.deployment.ledger.size())
    )


def test_an_invalid_act_names_every_field_at_fault_each_on_its_line(
    runner: CliRunner, home: Home, examiner: str
) -> None:
    item = json_object(
        runner.invoke(
            main,
            [
                *(
                    "evidence",
                    "register",
                    "--case",
                    "C-1",
                    "--exhibit",
                    "E",
                    "--description",
                    "box",
                ),
                *SEIZED,
                *("--as", examiner, "--json"),
            ],
        )
    )
    before = state_of(home.deployment)

    message = failed(
        runner.invoke(
            main,
            [
                *("evidence", "event", item["id"], "transferred", "--from", "", "--to", "Lab"),
                *("-f", "suspect=someone", "--as", examiner),
            ],
        )
    )

    assert message.splitlines() == [
        "Error: invalid fields",
        "  from: empty",
        "  location: required: where",
        "  reason: required: why",
        "  suspect: unknown field",
    ]
    assert state_of(home.deployment) == before


@pytest.fixture(params=["local", "server"])
def where(request: pytest.FixtureRequest, home: Home) -> list[str]:
    """Where a command acts: the local home as an examiner, or a server with one's token."""
    operator = home.deployment.principals.get("operator")
    _, token = home.deployment.principals.add("eve", "examiner", operator.actor)
    if request.param == "local":
        return ["--as", "eve"]
    url = request.getfixturevalue("server_url")
    return ["--server", url, "--token", token]


def test_an_invalid_intake_names_every_field_at_fault_locally_and_over_http(
    runner: CliRunner, home: Home, where: list[str], image: Path
) -> None:
    before = state_of(home.deployment)

    registered = runner.invoke(
        main,
        [
            *("evidence", "register", "--case", "C", "--exhibit", ""),
            *("--description", "box", "--parent", "not-an-id", *where),
        ],
    )
    ingested = runner.invoke(
        main,
        [
            *("ingest", str(image), "--case", "", "--exhibit", "E"),
            *("--acquired-at", "yesterday", *where),
        ],
    )

    fields = [line.split(":")[0].strip() for line in failed(registered).splitlines()[1:]]
    assert sorted(fields) == ["exhibit", "parent"]
    # Standard error also carries the progress bar's label, before the error.
    lines = failed(ingested).splitlines()
    lines = lines[next(i for i, line in enumerate(lines) if line.startswith("Error: ")) :]
    assert lines[0].startswith(f"Error: {image}: ")
    assert lines[0].endswith("invalid fields; nothing was recorded")
    assert sorted(line.split(":")[0].strip() for line in lines[1:]) == [
        "acquisition.acquired_at",
        "case",
    ]
    assert state_of(home.deployment) == before


def test_each_acts_options_are_its_fields_in_the_act_table(
    runner: CliRunner, home: Home, examiner: str
) -> None:
    for act, specs in ACT_FIELDS.items():
        command = main.commands["evidence"].commands["event"].commands[act.split(".", 1)[1]]  # type: ignore[attr-defined]
        options = {o for p in command.params for o in p.opts if o.startswith("--")}
        fields = {"--" + f.name.replace("_", "-") for f in specs}
        assert options - {"--field", "--server", "--token", "--as", "--json"} == fields, act
    item = json_object(
        runner.invoke(
            main,
            [
                *("evidence", "register", "--case", "C", "--exhibit", "E", "--description", "box"),
                *SEIZED,
                *("--as", examiner, "--json"),
            ],
        )
    )

    moved = json_object(
        runner.invoke(
            main,
            [
                *("evidence", "event", item["id"], "transferred", "--from", "lab", "--to", "alice"),
                *("--location", "room 2", "-f", "reason=storage", "--as", examiner, "--json"),
            ],
        )
    )

    assert moved["event"]["data"] == {
        "from": "lab",
        "to": home.deployment.principals.get("alice").id,
        "location": "room 2",
        "reason": "storage",
    }


def test_an_unknown_item_fails_cleanly(runner: CliRunner, examiner: str, tmp_path: Path) -> None:
    missing = "ev_0000000000000000"
    for args in (
        ["evidence", "show", missing],
        ["evidence", "custody", missing],
        ["evidence", "event", missing, "noted", "-f", "text=x"],
        ["evidence", "download", missing, "--purpose", "x", "-o", str(tmp_path / "out")],
    ):
        assert missing in failed(runner.invoke(main, [*args, "--as", examiner]))
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.part").exists()


# -- against a server over HTTP ------------------------------------------------------------------


@pytest.fixture
def examiner_token(home: Home) -> str:
    operator = home.deployment.principals.get("operator")
    token = home.deployment.principals.add("erin", "examiner", operator.actor)[1]
    for case in CASES:
        in_case(home.deployment, case, "erin")
    return token


def test_ingest_and_download_against_a_server(
    runner: CliRunner,
    home: Home,
    server_url: str,
    examiner_token: str,
    image: Path,
    tmp_path: Path,
) -> None:
    remote = ["--server", server_url, "--token", examiner_token, "--json"]
    before = state_of(home.deployment)

    wrong = runner.invoke(
        main,
        [
            "ingest",
            str(image),
            "--case",
            "C-1",
            "--exhibit",
            "HD-1",
            "--expect",
            f"md5:{'0' * 32}",
            *remote,
        ],
    )
    assert "422" in failed(wrong) and "nothing was recorded" in wrong.output
    assert state_of(home.deployment) == before

    done = json_object(
        runner.invoke(
            main,
            [
                "ingest",
                str(image),
                "--case",
                "C-1",
                "--exhibit",
                "HD-1",
                "--expect",
                f"sha256:{SHA256}",
                "--expect",
                f"md5:{MD5}",
                *remote,
            ],
        )
    )
    assert done["digests"] == {"sha256": SHA256, "md5": MD5}
    assert done["ledger_index"] == before[0]
    assert (
        home.deployment.handling.get(done["id"], SYSTEM).created_by
        == home.deployment.principals.get("erin").id
    )

    output = tmp_path / "copy.E01"
    got = json_object(
        runner.invoke(
            main,
            [
                "evidence",
                "download",
                done["id"],
                "--purpose",
                "court copy",
                "-o",
                str(output),
                *remote,
            ],
        )
    )
    assert output.read_bytes() == CONTENT
    assert got["digests"]["sha256"] == SHA256
    accessed = Event.decode(home.deployment.ledger.entry(got["access_index"]))
    assert accessed.type == "evidence.accessed"
    assert accessed.data == {"purpose": "court copy", "digests": {"sha256": SHA256, "md5": MD5}}

    listed = json_lines(runner.invoke(main, ["evidence", "list", "--case", "C-1", *remote]))
    assert [i["id"] for i in listed] == [done["id"]]
    history = json_lines(runner.invoke(main, ["evidence", "custody", done["id"], *remote]))
    assert [e["type"] for e in history] == ["evidence.ingested", "evidence.accessed"]

    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps(done["receipt"]), encoding="utf-8")
    key = home.deployment.keys.current.verifier_key
    ok(runner.invoke(main, ["verify-receipt", str(receipt), "--key", key]))
    report = audit_ledger(
        home.deployment.ledger.store, home.deployment.objects, home.deployment.keys
    )
    assert report.ok, [str(f) for f in report.findings]


def test_a_refused_request_to_the_server_fails_cleanly(
    runner: CliRunner, home: Home, server_url: str, image: Path
) -> None:
    before = state_of(home.deployment)

    result = runner.invoke(
        main,
        [
            "ingest",
            str(image),
            "--case",
            "C",
            "--exhibit",
            "E",
            "--server",
            server_url,
            "--token",
            home.operator_token,
        ],
    )

    assert "403" in failed(result)
    assert state_of(home.deployment) == before
    unknown = runner.invoke(main, ["evidence", "list", "--server", server_url, "--token", "nope"])
    assert "401" in failed(unknown)


@pytest.mark.parametrize("size", [len(CONTENT), (5 << 20) // 2], ids=["one-chunk", "3-chunks"])
def test_downloading_a_corrupted_item_from_the_server_fails_and_keeps_no_file(
    runner: CliRunner,
    home: Home,
    server_url: str,
    examiner_token: str,
    tmp_path: Path,
    size: int,
) -> None:
    remote = ["--server", server_url, "--token", examiner_token, "--json"]
    image = tmp_path / "image.bin"
    image.write_bytes(b"\x5a" * size)
    done = json_object(
        runner.invoke(
            main,
            [
                "ingest",
                str(image),
                "--case",
                "C-1",
                "--exhibit",
                "HD-1",
                *remote,
            ],
        )
    )
    blob = home.config.home / "objects" / done["storage"]["key"]
    blob.chmod(0o600)
    blob.write_bytes(b"\x5a" * (size - 1) + b"\x00")
    output = tmp_path / "copy.E01"

    message = failed(
        runner.invoke(
            main,
            [
                "evidence",
                "download",
                done["id"],
                "--purpose",
                "copy",
                "-o",
                str(output),
                *remote,
            ],
        )
    )

    assert "HTTP 500" in message
    assert not output.exists() and not output.with_name(output.name + ".part").exists()
    events = [
        Event.decode(e.leaf).type
        for e in home.deployment.ledger.subject_entries(f"evidence:{done['id']}")
    ]
    # The bytes are re-hashed before the access is recorded: no access, the failure.
    assert events[-2:] == ["evidence.ingested", "evidence.integrity_failed"]


def test_the_server_refuses_a_corrupted_download_before_any_byte(
    home: Home, server_url: str, examiner_token: str
) -> None:
    deployment = home.deployment
    examiner = deployment.principals.authenticate(examiner_token).actor
    content = b"\x33" * ((5 << 20) // 2)  # three read chunks
    session = deployment.intake.open_session(
        {"kind": "digital", "case": "C", "exhibit": "E", "description": "d"}, examiner
    )
    record = deployment.intake.receive(session.id, io.BytesIO(content), examiner).record
    blob = home.config.home / "objects" / str(record.storage_key)
    blob.chmod(0o600)
    blob.write_bytes(content[:-1] + b"\x00")
    port = int(server_url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    connection.request(
        "GET",
        f"/v1/evidence/{record.id}/content?purpose=check",
        headers={"Authorization": f"Bearer {examiner_token}"},
    )
    response = connection.getresponse()
    body = response.read()
    connection.close()

    assert response.status == 500
    assert response.headers["Content-Type"] == "application/problem+json"
    assert content[:100] not in body


def test_ingest_of_a_folder_records_each_file_under_its_relative_path(
    runner: CliRunner, home: Home, examiner: str, tmp_path: Path
) -> None:
    folder = tmp_path / "phone"
    (folder / "DCIM" / "2026").mkdir(parents=True)
    (folder / "DCIM" / "2026" / "img-1.jpg").write_bytes(b"first picture")
    (folder / "notes.txt").write_bytes(b"a note")
    (folder / "link").symlink_to(folder / "notes.txt")

    result = ok(
        runner.invoke(
            main, ["ingest", str(folder), "--case", "C-9", "--exhibit", "PH", "--as", examiner]
        )
    )

    records = {r.exhibit: r for r in home.deployment.evidence.list("C-9", None, 10, None)}
    assert sorted(records) == ["PH-1", "PH-2"]
    assert records["PH-1"].description["description"] == "phone/DCIM/2026/img-1.jpg"
    assert records["PH-2"].description["description"] == "phone/notes.txt"
    lines = result.stdout.splitlines()
    assert lines[0].startswith("PH-1  ") and lines[0].endswith("phone/DCIM/2026/img-1.jpg")
    assert lines[1].startswith("PH-2  ") and lines[1].endswith("phone/notes.txt")


def test_ingest_of_an_empty_folder_is_a_usage_error(
    runner: CliRunner, examiner: str, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()

    result = runner.invoke(
        main, ["ingest", str(tmp_path / "empty"), "--case", "C", "--exhibit", "E", "--as", examiner]
    )

    assert "no file to ingest" in failed(result)


def test_ingest_says_when_the_same_content_is_already_in_the_case(
    runner: CliRunner, home: Home, examiner: str, image: Path, tmp_path: Path
) -> None:
    first = json_object(
        runner.invoke(
            main,
            [
                "ingest",
                str(image),
                "--case",
                "C-1",
                "--exhibit",
                "HD-1",
                "--as",
                examiner,
                "--json",
            ],
        )
    )
    assert first["same_content_in_case"] == []
    copy = tmp_path / "copy.E01"
    copy.write_bytes(CONTENT)

    again = ok(
        runner.invoke(
            main, ["ingest", str(copy), "--case", "C-1", "--exhibit", "HD-2", "--as", examiner]
        )
    )
    elsewhere = json_object(
        runner.invoke(
            main,
            ["ingest", str(copy), "--case", "C-2", "--exhibit", "HD-1", "--as", examiner, "--json"],
        )
    )

    assert f"the same content is already in case C-1: HD-1 ({first['id']})" in again.stdout
    assert elsewhere["same_content_in_case"] == []


def test_a_file_rewritten_while_it_is_read_fails_and_records_nothing(
    runner: CliRunner,
    home: Home,
    examiner: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A writer thread rewrites a region the reader has already read, keeping the size."""
    source = tmp_path / "acquiring.dd"
    source.write_bytes(CONTENT * 64)  # ~5 MB: several reads
    reads = []
    original = StableFile.readinto

    def read_then_rewrite(self: StableFile, buffer: Any) -> int:
        n = original(self, buffer)
        reads.append(n)
        if len(reads) == 1:

            def rewrite() -> None:
                with source.open("r+b") as f:
                    f.write(b"OVERWRITTEN")
                    f.flush()
                    os.fsync(f.fileno())

            writer = threading.Thread(target=rewrite)
            writer.start()
            writer.join()
        return n

    monkeypatch.setattr(StableFile, "readinto", read_then_rewrite)
    before = state_of(home.deployment)

    result = runner.invoke(
        main, ["ingest", str(source), "--case", "C-1", "--exhibit", "HD-1", "--as", examiner]
    )

    assert "changed while it was read" in failed(result)
    assert "nothing was recorded" in result.output
    assert len(reads) > 1
    assert state_of(home.deployment) == before


def test_a_file_rewritten_while_it_is_sent_to_a_server_fails_and_records_nothing(
    runner: CliRunner,
    home: Home,
    server_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same over HTTP: the upload stops short, so the server records nothing either."""
    operator = home.deployment.principals.get("operator")
    _, token = home.deployment.principals.add("eve", "examiner", operator.actor)
    in_case(home.deployment, "C-1", "eve")
    source = tmp_path / "acquiring.dd"
    source.write_bytes(CONTENT * 64)
    reads = []
    original = StableFile.read

    def read_then_rewrite(self: StableFile, size: int | None = -1) -> bytes:
        data = original(self, size)
        reads.append(len(data))
        if len(reads) == 1:
            writer = threading.Thread(target=lambda: source.write_bytes(CONTENT * 64))
            writer.start()
            writer.join()
        return data

    monkeypatch.setattr(StableFile, "read", read_then_rewrite)
    before = state_of(home.deployment)

    result = runner.invoke(
        main,
        [
            *("ingest", str(source), "--case", "C-1", "--exhibit", "HD-1"),
            *("--server", server_url, "--token", token),
        ],
    )

    assert "changed while it was read" in failed(result)
    assert len(reads) > 1
    assert state_of(home.deployment) == before


def test_a_file_that_grows_while_it_is_read_fails_and_records_nothing(
    runner: CliRunner, home: Home, examiner: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "growing.dd"
    source.write_bytes(CONTENT * 16)
    original = StableFile.readinto
    grown = []

    def read_then_append(self: StableFile, buffer: Any) -> int:
        n = original(self, buffer)
        if not grown:
            grown.append(True)
            with source.open("ab") as f:
                f.write(b"more")
        return n

    monkeypatch.setattr(StableFile, "readinto", read_then_append)
    before = state_of(home.deployment)

    result = runner.invoke(
        main, ["ingest", str(source), "--case", "C-1", "--exhibit", "HD-1", "--as", examiner]
    )

    assert "changed while it was read" in failed(result)
    assert state_of(home.deployment) == before


def test_a_file_name_that_is_not_utf8_is_recorded_escaped(
    runner: CliRunner, home: Home, examiner: str, tmp_path: Path
) -> None:
    raw = tmp_path.as_posix().encode() + b"/caf\xe9-\xff.E01"
    path = Path(os.fsdecode(raw))
    path.write_bytes(CONTENT)

    done = ingest(runner, path, examiner)

    record = home.deployment.handling.get(done["id"], SYSTEM)
    assert record.description["description"] == "caf\\xe9-\\xff.E01"
    assert done["path"].endswith("/caf\\xe9-\\xff.E01")
    assert audit_ledger(
        home.deployment.ledger.store, home.deployment.objects, home.deployment.keys
    ).ok


def test_text_that_cannot_be_recorded_is_refused_before_anything_is_stored(
    home: Home, examiner: str, tmp_path: Path
) -> None:
    deployment = home.deployment
    actor = deployment.principals.get(examiner).actor
    before = state_of(deployment)
    announced = {
        "kind": "digital",
        "case": "C-1",
        "exhibit": "HD-1",
        "description": os.fsdecode(b"caf\xe9.E01"),  # a lone surrogate, as Python reads it
        "acquisition": {"tool": "dd\x00", "acquired_by": "Alice"},
    }

    with pytest.raises(FieldErrors) as refused:
        deployment.intake.open_session(announced, actor)

    assert refused.value.errors == [
        ("description", "not text that can be recorded (not UTF-8)"),
        ("acquisition.tool", "holds a NUL character"),
    ]

    assert state_of(deployment) == before


def test_the_custody_history_names_who_acted_locally_and_over_http(
    runner: CliRunner, home: Home, where: list[str], image: Path
) -> None:
    operator = home.deployment.principals.get("operator").actor
    home.deployment.principals.name("eve", "Eve Moreau", operator)
    in_case(home.deployment, "C-1", "eve")
    done = json_object(
        runner.invoke(
            main, ["ingest", str(image), "--case", "C-1", "--exhibit", "HD-7", *where, "--json"]
        )
    )
    eve = home.deployment.principals.get("eve")

    readable = ok(runner.invoke(main, ["evidence", "custody", done["id"], *where])).stdout

    assert f"by Eve Moreau (examiner, {eve.id})" in readable
