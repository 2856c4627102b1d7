"""The offline verifier needs only the standard library, cryptography and its own modules.

Each test runs a fresh interpreter whose ``sitecustomize`` installs a meta-path finder that
makes the server's dependencies (and the server's own packages) raise ImportError, as on a
court's machine where only the verifier is installed (ARCHITECTURE.md, Layers).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from storage.deployment import Deployment
from tests.custody.test_verify_receipt import KEY, make_bundle
from tests.factories import in_case

REPO = Path(__file__).resolve().parents[2]

UNAVAILABLE = (
    "service",
    "storage",
    "flask",
    "boto3",
    "sqlalchemy",
    "click",
    "rfc8785",
    "marshmallow",
)
SITECUSTOMIZE = f"""
import sys

UNAVAILABLE = frozenset({UNAVAILABLE!r})


class Unavailable:
    \"\"\"Refuse to import the server's dependencies, as if they were not installed.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in UNAVAILABLE:
            raise ModuleNotFoundError(f"No module named {{name!r}} (made unavailable)", name=name)
        return None


sys.meta_path.insert(0, Unavailable())
"""

VERIFIER_MODULES = frozenset(
    {
        "custody",
        "custody.commitment",
        "custody.event_types",
        "custody.json_codec",
        "custody.note",
        "custody.note_types",
        "custody.checkpoint",
        "custody.merkle",
        "custody.receipt",
        "custody.verify",
        "custody.verify.errors",
        "custody.verify.receipt",
        "custody.verify.__main__",
        "custody.verify.archive",
        "custody.verify.bundle",
        "custody.verify.chain",
        "custody.verify.cosignature",
        "custody.verify.formats",
        "custody.verify.history",
        "custody.verify.item",
        "custody.verify.parties",
        "custody.verify.results",
        "custody.verify.report",
        "custody.verify.escaping",
    }
)
# cryptography and the modules its compiled bindings register.
CRYPTOGRAPHY_MODULES = frozenset({"cryptography", "_cffi_backend", "_openssl"})


CourtPython = Callable[[list[str]], "subprocess.CompletedProcess[str]"]


@pytest.fixture
def court_python(tmp_path: Path) -> CourtPython:
    """Return a runner of ``python ARGS`` in an interpreter without the server's dependencies."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO)])

    def run(args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run


def test_server_dependencies_are_unimportable_in_the_court_python(
    court_python: CourtPython,
) -> None:
    probe = (
        "import importlib, json\n"
        "failed = []\n"
        f"for name in {[*UNAVAILABLE, 'storage.deployment', 'cli']!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError:\n"
        "        failed.append(name)\n"
        "print(json.dumps(failed))\n"
    )
    result = court_python(["-c", probe])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [*UNAVAILABLE, "storage.deployment", "cli"]


def test_verifier_imports_only_stdlib_cryptography_and_verifier_modules(
    court_python: CourtPython,
) -> None:
    probe = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import custody.verify.receipt, custody.verify.bundle, custody.verify.results\n"
        "import custody.verify.report, custody.verify.__main__\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    result = court_python(["-c", probe])
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    custody = {m for m in loaded if m.partition(".")[0] == "custody"}
    assert custody <= VERIFIER_MODULES, f"verifier imports {sorted(custody - VERIFIER_MODULES)}"
    others = {
        m
        for m in loaded
        if m.partition(".")[0] not in {"custody", *sys.stdlib_module_names, *CRYPTOGRAPHY_MODULES}
    }
    assert not others, f"verifier imports third-party modules {sorted(others)}"


def test_no_custody_module_imports_the_web_the_database_the_cloud_or_the_edges(
    court_python: CourtPython,
) -> None:
    """custody/ is the domain (ARCHITECTURE.md, Layers): every one of its modules imports
    without Flask, SQLAlchemy, boto3, service/ or storage/ (nor the rest of UNAVAILABLE)."""
    probe = (
        "import importlib, json, pkgutil, sys\n"
        "import custody\n"
        "names = sorted(m.name for m in pkgutil.walk_packages(custody.__path__, 'custody.'))\n"
        "failed = {}\n"
        "for name in names:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as exc:\n"
        "        failed[name] = str(exc)\n"
        "print(json.dumps({'imported': names, 'failed': failed}))\n"
    )
    result = court_python(["-c", probe])
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["failed"] == {}
    modules = {
        path.relative_to(REPO).with_suffix("").as_posix().replace("/", ".")
        for path in (REPO / "custody").rglob("*.py")
        if path.name != "__init__.py"
    }
    assert modules <= set(found["imported"])


def test_verifier_command_checks_a_receipt_without_server_dependencies(
    court_python: CourtPython, tmp_path: Path
) -> None:
    bundle = make_bundle()
    good, forged = tmp_path / "receipt.json", tmp_path / "forged.json"
    good.write_bytes(bundle.to_json())
    forged.write_bytes(dataclasses.replace(bundle, leaf=bundle.leaf + b" ").to_json())
    verify = ["-m", "custody.verify", "receipt"]

    result = court_python([*verify, str(good), "--key", KEY, "--json"])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ok"] is True

    result = court_python([*verify, str(forged), "--key", KEY])
    assert result.returncode == 1, result.stderr
    assert "(4) FAIL" in result.stdout

    result = court_python([*verify, str(good)])
    assert result.returncode == 2
    assert "--key" in result.stderr


def test_verifier_command_checks_an_exhibit_bundle_without_server_dependencies(
    court_python: CourtPython, deployment: Deployment, tmp_path: Path
) -> None:
    people = deployment.principals
    operator = people.get("operator").actor
    examiner = people.add("alice", "examiner", operator)[0].actor
    court = people.add("clerk", "court", operator)[0].actor
    in_case(deployment, "C-1", "alice", "clerk")
    metadata = {"kind": "digital", "case": "C-1", "exhibit": "HD-1", "description": "disk"}
    item = deployment.intake.open_session(metadata, examiner).id
    deployment.intake.receive(item, io.BytesIO(b"sector " * 1000), examiner)
    good, bad = tmp_path / "exhibit.zip", tmp_path / "two-members-named-checkpoint.zip"
    with good.open("wb") as out:
        deployment.bundles.export([item], out, by=court, with_content=True)
    bad.write_bytes(good.read_bytes())
    with zipfile.ZipFile(bad, "a") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the duplicate name is the point
        archive.writestr("checkpoint", b"another")
    key = deployment.keys.current.verifier_key

    report = tmp_path / "report.html"
    verify = ["-m", "custody.verify", str(good), "--key", key, "--json", "--report", str(report)]
    result = court_python(verify)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["ok"] is True
    assert item in report.read_text("utf-8")

    result = court_python(["-m", "custody.verify", str(bad), "--key", key])
    assert result.returncode == 1, result.stderr
    assert "(1) FAIL" in result.stdout and "appears twice" in result.stdout
