"""The offline verifier needs only the standard library, cryptography and its own modules.

Each test runs a fresh interpreter whose ``sitecustomize`` installs a meta-path finder that
makes the server's dependencies (and the server's own packages) raise ImportError, as on a
court's machine where only the verifier is installed (ARCHITECTURE.md, Layers).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.custody.test_verify_receipt import KEY, make_bundle

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
        "custody.note",
        "custody.checkpoint",
        "custody.merkle",
        "custody.receipt",
        "custody.verify",
        "custody.verify.errors",
        "custody.verify.receipt",
        "custody.verify.__main__",
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
        f"for name in {[*UNAVAILABLE, 'custody.events', 'custody.ledger']!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError:\n"
        "        failed.append(name)\n"
        "print(json.dumps(failed))\n"
    )
    result = court_python(["-c", probe])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [*UNAVAILABLE, "custody.events", "custody.ledger"]


def test_verifier_imports_only_stdlib_cryptography_and_verifier_modules(
    court_python: CourtPython,
) -> None:
    probe = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import custody.verify.receipt, custody.verify.__main__\n"
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
