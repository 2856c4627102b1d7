"""Tests of ``make verifier`` (tools/build_verifier.py): the one-file offline verifier runs in a
fresh interpreter that has nothing but the standard library and ``cryptography`` (with what
``pip install cryptography`` brings), away from the repository, on a sound and a tampered
bundle; the build is reproducible and refuses a verifier module that imports a server
dependency."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.note import Note, NoteSigner, sign_note
from custody.verify.cosignature import CosignatureSigner
from storage.deployment import Deployment
from tests.factories import in_case

REPO = Path(__file__).resolve().parents[1]
COURT_DISTRIBUTIONS = ("cryptography", "cffi", "pycparser")
"""What ``pip install cryptography`` installs on CPython."""

CourtRun = Callable[[list[str]], "subprocess.CompletedProcess[str]"]


@pytest.fixture
def builder(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """tools/build_verifier.py as a module (tools/ is not a package)."""
    path = REPO / "tools" / "build_verifier.py"
    spec = importlib.util.spec_from_file_location("build_verifier", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look themselves up
    spec.loader.exec_module(module)
    return module


def court_site(site: Path) -> Path:
    """A directory holding only cryptography and its dependencies (links to the installed
    copies), for an interpreter run without site-packages."""
    site.mkdir()
    for name in COURT_DISTRIBUTIONS:
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        tops = {f.parts[0] for f in distribution.files or ()}
        for top in sorted(tops - {".."}):
            if not top.endswith(".dist-info") and top != "__pycache__":
                (site / top).symlink_to(distribution.locate_file(top))
    return site


@pytest.fixture
def court(tmp_path: Path) -> tuple[Path, CourtRun]:
    """The built verifier, and a runner of ``python -S ARGS`` in a court's bare interpreter:
    no site-packages, only the standard library and cryptography, outside the repository."""
    verifier = tmp_path / "dist" / "custos-verify.py"
    done = subprocess.run(
        [sys.executable, str(REPO / "tools/build_verifier.py"), "-o", str(verifier)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(court_site(tmp_path / "site"))}

    def run(args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-S", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return verifier, run


def exhibit(deployment: Deployment) -> bytes:
    """A sound bundle of an examiner's item, with its content."""
    people = deployment.principals
    operator = people.get("operator").actor
    examiner = people.add("alice", "examiner", operator)[0].actor
    court = people.add("clerk", "court", operator)[0].actor
    in_case(deployment, "C-1", "alice", "clerk")
    metadata = {"kind": "digital", "case": "C-1", "exhibit": "USB-1", "description": "stick"}
    item = deployment.intake.open_session(metadata, examiner).id
    deployment.intake.receive(item, io.BytesIO(b"usb stick image " * 512), examiner)
    deployment.handling.record_act(item, "evidence.sealed", {"seal": "S-7"}, examiner)
    out = io.BytesIO()
    deployment.bundles.export([item], out, by=court, with_content=True)
    return out.getvalue()


def test_the_court_interpreter_has_only_the_standard_library_and_cryptography(
    court: tuple[Path, CourtRun],
) -> None:
    _, run = court
    probe = (
        "import importlib, json\n"
        "found = {}\n"
        "for name in ['cryptography', 'custody', 'service', 'storage', 'flask', 'boto3',\n"
        "             'sqlalchemy', 'click', 'rfc8785']:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "        found[name] = True\n"
        "    except ImportError:\n"
        "        found[name] = False\n"
        "print(json.dumps(found))\n"
    )
    result = run(["-c", probe])
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found.pop("cryptography") is True
    assert not any(found.values()), found


def test_the_built_verifier_checks_bundles_in_the_court_interpreter(
    court: tuple[Path, CourtRun], deployment: Deployment, tmp_path: Path
) -> None:
    verifier, run = court
    key = deployment.keys.current.verifier_key
    sound, tampered, report = (
        tmp_path / "exhibit.zip",
        tmp_path / "tampered.zip",
        tmp_path / "r.html",
    )
    sound.write_bytes(exhibit(deployment))
    with zipfile.ZipFile(sound) as source, zipfile.ZipFile(tampered, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("/manifest"):
                data = data.replace(b'"exhibit":"USB-1"', b'"exhibit":"USB-2"')
            target.writestr(info, data)

    result = run([str(verifier), str(sound), "--key", key, "--report", str(report)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "VERIFIED: every step passed" in result.stdout
    assert "USB-1" in report.read_text("utf-8")

    result = run([str(verifier), str(tampered), "--key", key, "--json"])
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["failed_steps"] == [6]

    result = run([str(verifier), str(sound)])
    assert result.returncode == 2
    assert "--key" in result.stderr


def test_the_build_is_reproducible_and_names_each_module_s_digest(
    builder: ModuleType, tmp_path: Path
) -> None:
    build = builder
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    build.build(first)
    build.build(second)

    assert first.read_bytes() == second.read_bytes()
    text = first.read_text("utf-8")
    for module in ("custody/verify/bundle.py", "custody/merkle.py", "custody/note.py"):
        assert module in text.split('"""', 2)[1]


def test_the_build_refuses_a_verifier_module_that_imports_a_server_dependency(
    builder: ModuleType, tmp_path: Path
) -> None:
    build = builder
    package = tmp_path / "custody" / "verify"
    package.mkdir(parents=True)
    (tmp_path / "custody" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text("import json\nfrom custody.verify import store\n")
    (package / "store.py").write_text("def load():\n    import sqlalchemy\n")

    with pytest.raises(
        build.BuildError, match=r"custody/verify/store.py \(line 2\) imports sqlalchemy"
    ):
        build.build(tmp_path / "out.py", root=tmp_path, entry_points=["custody.verify.__main__"])


def test_the_built_verifier_trusts_a_note_only_under_its_log_and_counts_witnesses(
    court: tuple[Path, CourtRun], deployment: Deployment, tmp_path: Path
) -> None:
    verifier, run = court
    key = deployment.keys.current.verifier_key
    other = NoteSigner("other-agency.example/log", Ed25519PrivateKey.generate())
    witness = CosignatureSigner("witness.example", Ed25519PrivateKey.generate())
    sound = exhibit(deployment)
    members = read_members(sound)
    note = members["checkpoint"]
    text = Note.from_bytes(note).text
    cosigned = note + witness.sign(text, int(time.time())).line().encode()
    foreign_head, witnessed = tmp_path / "foreign-head.zip", tmp_path / "witnessed.zip"
    heads = {n: d for n, d in members.items() if n.startswith("items/") and n.endswith("/head")}
    write_members(
        foreign_head,
        members,
        {n: sign_note(Note.from_bytes(d).text, [other]) for n, d in heads.items()},
    )
    write_members(
        witnessed,
        members,
        {
            n: d.replace(note, cosigned)
            for n, d in members.items()
            if n == "checkpoint" or "/proofs/" in n
        },
    )
    both = ["--key", key, "--key", other.verifier.verifier_key()]
    pinned_witness = ["--witness", witness.verifier.verifier_key(), "--witnesses", "1"]

    refused = run([str(verifier), str(foreign_head), *both, "--json"])
    counted = run([str(verifier), str(witnessed), "--key", key, *pinned_witness])
    unwitnessed = tmp_path / "unwitnessed.zip"
    unwitnessed.write_bytes(sound)
    missing = run([str(verifier), str(unwitnessed), "--key", key, *pinned_witness])

    assert refused.returncode == 1, refused.stderr
    assert json.loads(refused.stdout)["failed_steps"] == [5]
    assert counted.returncode == 0, counted.stdout + counted.stderr
    assert missing.returncode == 1 and "(8) FAIL" in missing.stdout


def read_members(bundle: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def write_members(path: Path, members: dict[str, bytes], replace: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as target:
        for name, data in members.items():
            target.writestr(name, replace.get(name, data))
