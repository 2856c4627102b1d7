"""Build the offline verifier into one file a court runs with only Python and ``cryptography``.

    python3 tools/build_verifier.py [-o dist/custos-verify.py]     (what `make verifier` runs)

The output is one readable Python file: a header naming every module it holds with its SHA-256,
the modules' sources verbatim, and a loader of a few lines that makes them importable under
their own names (``custody.verify.bundle`` ...). So the code a court runs is, byte for byte, the
code in this repository, an expert witness can read it in the file itself, and the checklist
tags (``# (3): ...``) are where they are in the sources. A zipapp would run the same way, but a
court could not read it without unpacking it, nor hash-compare a module by eye.

The modules are found from the verifier's entry points (``custody.verify.__main__`` and the
custody report it renders) by following their imports, module-level and lazy alike. Every
import must be of the standard library, ``cryptography`` or another custody module that
passes the same test; the build refuses, naming the import, anything else. The same sources
always give the same bytes.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "custody"
ENTRY_POINTS = ("custody.verify.__main__", "custody.verify.report")
THIRD_PARTY = frozenset({"cryptography"})
"""What a court installs besides Python."""
DEFAULT_OUTPUT = ROOT / "dist" / "custos-verify.py"
_DELIMITER = "'''"


class BuildError(Exception):
    """The verifier cannot be built as one self-contained file; the message says why."""


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool

    @property
    def source(self) -> str:
        return self.path.read_text("utf-8")

    @property
    def relative(self) -> str:
        """Its path in the repository."""
        return self.name.replace(".", "/") + ("/__init__.py" if self.is_package else ".py")


def find_module(root: Path, name: str) -> Module | None:
    """The module or package ``name`` under ``root``, or None if there is none."""
    base = root.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return Module(name, base / "__init__.py", True)
    if base.with_suffix(".py").is_file():
        return Module(name, base.with_suffix(".py"), False)
    return None


def collect(root: Path, entry_points: Iterable[str]) -> list[Module]:
    """Every custody module the entry points need, packages included, sorted by name.

    Raises BuildError for an import a court's Python lacks (not the standard library, not
    ``cryptography``, not a custody module) and for an entry point that does not exist.
    """
    found: dict[str, Module] = {}
    pending = list(entry_points)
    while pending:
        name = pending.pop()
        if name in found:
            continue
        module = find_module(root, name)
        if module is None:
            raise BuildError(f"no module {name} under {root}")
        found[name] = module
        parts = name.split(".")
        pending.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # its packages
        pending.extend(_imports(root, module))
    return sorted(found.values(), key=lambda m: m.name)


def _imports(root: Path, module: Module) -> list[str]:
    """The custody modules ``module`` imports; BuildError for an import a court lacks."""
    tree = ast.parse(module.source, str(module.path))
    needed: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise BuildError(f"{module.relative} uses a relative import; use absolute ones")
            assert node.module is not None
            names = [node.module]
            # ``from custody import merkle`` imports a module, not a name
            names += [
                f"{node.module}.{alias.name}"
                for alias in node.names
                if find_module(root, f"{node.module}.{alias.name}") is not None
            ]
        else:
            continue
        for name in names:
            top = name.partition(".")[0]
            if top == PACKAGE:
                needed.append(name)
            elif top not in sys.stdlib_module_names and top not in THIRD_PARTY:
                raise BuildError(
                    f"{module.relative} (line {node.lineno}) imports {name}, which a court's "
                    f"Python lacks: the verifier may import only the standard library, "
                    f"{', '.join(sorted(THIRD_PARTY))} and custody modules that obey this rule"
                )
    return needed


def render(modules: list[Module]) -> str:
    """The one-file verifier: header, the modules verbatim, the loader, the entry point."""
    listing = "\n".join(
        f"    {m.relative:<32} sha256 {hashlib.sha256(m.path.read_bytes()).hexdigest()}"
        for m in modules
    )
    parts = [HEADER.format(listing=listing)]
    for module in modules:
        source = module.source
        if _DELIMITER in source:
            raise BuildError(f"{module.relative} holds {_DELIMITER}, which this file format cannot")
        opening = f"_module({module.name!r}, {module.is_package!r}, r{_DELIMITER}"
        parts.append(f"\n# {'=' * 96}\n# {module.relative}\n{opening}\n{source}{_DELIMITER})\n")
    parts.append(FOOTER)
    return "".join(parts)


def check(text: str, modules: list[Module]) -> None:
    """Check that the file parses and carries every module's source exactly."""
    tree = ast.parse(text)
    carried: dict[str, str] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "_module"
        ):
            name, _, source = (arg.value for arg in node.args if isinstance(arg, ast.Constant))
            carried[name] = source[1:]  # the newline after the opening delimiter
    for module in modules:
        if carried.get(module.name) != module.source:
            raise BuildError(f"{module.relative} did not survive the build byte for byte")


def build(output: Path, root: Path = ROOT, entry_points: Iterable[str] = ENTRY_POINTS) -> None:
    """Write the one-file verifier to ``output``."""
    modules = collect(root, entry_points)
    text = render(modules)
    check(text, modules)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, "utf-8")
    output.chmod(0o755)


HEADER = '''#!/usr/bin/env python3
"""custos-verify: the Custos offline verifier in one file (built by tools/build_verifier.py).

    python3 custos-verify.py EXHIBIT.zip --key KEY [--key KEY ...] [--artifact FILE]
        [--known-checkpoint FILE] [--json] [--report OUT.html]
    python3 custos-verify.py receipt RECEIPT.json --key KEY [--json]

Needs Python 3.11 or later and the `cryptography` package, nothing else. Trusts nothing but
the verifier keys given with --key. Exit status 0: verified; 1: a check failed; 2: wrong use.

This file holds the verifier's modules verbatim, each below a line naming it, and a loader at
the end that makes them importable under their own names, so the code that runs is the code
of the Custos repository. The modules and the SHA-256 of each source file:

{listing}
"""

import importlib.abc
import importlib.util
import linecache
import sys
from pathlib import Path

_SOURCES = {{}}


def _module(name, is_package, source):
    _SOURCES[name] = (is_package, source[1:])  # the newline after the opening delimiter
'''

FOOTER = """

# ================================================================================================
# The loader: the modules above, importable under their own names (ahead of any installed copy).


class _Embedded(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name not in _SOURCES:
            return None
        origin = f"{__file__}/{name.replace('.', '/')}.py"
        return importlib.util.spec_from_loader(
            name, self, origin=origin, is_package=_SOURCES[name][0]
        )

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        source = _SOURCES[module.__name__][1]
        filename = module.__spec__.origin
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(compile(source, filename, "exec"), module.__dict__)


sys.meta_path.insert(0, _Embedded())

if __name__ == "__main__":
    from custody.verify.__main__ import main

    sys.exit(main(prog=Path(sys.argv[0]).name))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-o", "--output", type=Path, default=DEFAULT_OUTPUT, help=f"default {DEFAULT_OUTPUT}"
    )
    args = parser.parse_args(argv)
    try:
        build(args.output)
    except BuildError as exc:
        print(f"build_verifier: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
