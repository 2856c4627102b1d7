"""``python -m custody.verify``: check Custos evidence offline against pinned keys.

    python -m custody.verify [bundle] EXHIBIT.zip --key KEY [--key KEY ...]
        [--artifact FILE ...] [--known-checkpoint FILE] [--witness KEY ... --witnesses K]
        [--max-age AGE] [--json] [--report OUT.html]
    python -m custody.verify receipt FILE --key KEY [--key KEY ...] [--artifact FILE ...]
        [--json]

Each subcommand runs one numbered verification procedure and prints every check with ``ok`` or
``FAIL`` (or, with ``--json``, one JSON object on one line); a bare file argument means the
exhibit bundle procedure (docs/bundle.md). ``--key`` is a verifier key
``<name>+<hash>+<base64>`` or ``@FILE`` naming a file with one such key per line; only those
keys are trusted. Exit status: 0 when every check passed (or did not apply), 1 when one failed,
2 when the command was used wrongly (a bad option or key, a file that cannot be read).

A single-file procedure is a :class:`Procedure` in :data:`PROCEDURES`: its checklist and a
function ``verify(file_bytes, keys, artifacts) -> report`` that raises VerificationError at
the first failed check; its ``artifact_step`` checks the files given with ``--artifact``, and
is shown as skipped when none is. The exhibit procedure reports every step instead, for the
bundle and each item (``custody.verify.bundle``), and can render the custody report with
``--report``.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from custody.verify.bundle import BUNDLE_CHECKS, verify_bundle
from custody.verify.errors import PinnedKeyError, VerificationError, VerifierError
from custody.verify.receipt import (
    ARTIFACT_STEP,
    RECEIPT_CHECKS,
    pinned_verifiers,
    verify_receipt,
)
from custody.verify.results import FAIL, NOT_RUN, PASS, ExhibitVerification

__all__ = [
    "EXHIBIT",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "EXIT_VERIFIED",
    "PROCEDURES",
    "Procedure",
    "main",
    "read_pinned_keys",
    "verify_command",
]

EXIT_VERIFIED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

PROG = "python -m custody.verify"
EXHIBIT = "bundle"
"""The exhibit bundle procedure's subcommand, also run for a bare file argument."""


class Report(Protocol):
    """What a procedure returns when every check passed."""

    def as_json(self) -> dict[str, Any]: ...

    def summary(self) -> list[tuple[str, str]]: ...


@dataclass(frozen=True)
class Procedure:
    """One subcommand: the file it checks, its numbered checks and the function that runs them."""

    name: str
    help: str
    file_help: str
    checks: tuple[str, ...]
    verify: Callable[[bytes, Sequence[str], Sequence[Path]], Report]
    artifact_step: int
    """The check of the caller's own copies of the evidence (``--artifact``)."""


PROCEDURES: tuple[Procedure, ...] = (
    Procedure(
        name="receipt",
        help="verify an ingest receipt file against pinned keys",
        file_help="the receipt file (custos/receipt-bundle/v1 JSON), or - for standard input",
        checks=RECEIPT_CHECKS,
        verify=verify_receipt,
        artifact_step=ARTIFACT_STEP,
    ),
)


class UsageError(VerifierError):
    """The command was used wrongly: exit status 2, nothing verified."""


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Run ``python -m custody.verify [<procedure>] FILE ...`` and return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    commands = {EXHIBIT, *(procedure.name for procedure in PROCEDURES)}
    if args and args[0] not in commands and args[0] not in ("-h", "--help"):
        args = [EXHIBIT, *args]  # a bare file: the exhibit procedure
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Check Custos evidence offline against keys you pinned. With a bare FILE, "
        f"check an exhibit bundle (the {EXHIBIT} procedure).",
    )
    subparsers = parser.add_subparsers(
        dest="command", required=True, metavar="{" + ",".join(sorted(commands)) + "}"
    )
    _add_exhibit_arguments(
        subparsers.add_parser(
            EXHIBIT,
            help="verify an exhibit bundle (custos/exhibit/v3, v2 or v1) against pinned keys",
            description=_exhibit_text(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    for procedure in PROCEDURES:
        _add_procedure_arguments(
            subparsers.add_parser(
                procedure.name,
                help=procedure.help,
                description=_checklist_text(procedure),
                formatter_class=argparse.RawDescriptionHelpFormatter,
            ),
            procedure,
        )
    return _run(parser, args)


def verify_command(name: str, argv: Sequence[str], prog: str) -> int:
    """Run one procedure as its own command (``custos verify``, ``custos verify-receipt``);
    return the exit status."""
    if name == EXHIBIT:
        parser = argparse.ArgumentParser(
            prog=prog,
            description=_exhibit_text(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_exhibit_arguments(parser)
        return _run(parser, argv)
    procedure = _procedure(name)
    parser = argparse.ArgumentParser(
        prog=prog,
        description=_checklist_text(procedure),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_procedure_arguments(parser, procedure)
    return _run(parser, argv)


def _procedure(name: str) -> Procedure:
    for procedure in PROCEDURES:
        if procedure.name == name:
            return procedure
    raise KeyError(f"no verification procedure {name!r}")


def _checklist_text(procedure: Procedure) -> str:
    checks = "\n".join(f"  ({n}) {check}" for n, check in enumerate(procedure.checks, 1))
    return f"{procedure.help[0].upper()}{procedure.help[1:]}. The checks, in order:\n{checks}"


def _exhibit_text() -> str:
    checks = "\n".join(f"  ({n}) {check}" for n, check in enumerate(BUNDLE_CHECKS, 1))
    return (
        "Verify an exhibit bundle (custos/exhibit/v3, v2 or v1, made by `custos export`) against "
        f"pinned keys. The steps, for the bundle and each item, in order:\n{checks}"
    )


def _add_exhibit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(procedure=None)
    parser.add_argument(
        "file", metavar="EXHIBIT", help="the exhibit bundle (a ZIP), or - for stdin"
    )
    _add_key_argument(parser)
    parser.add_argument(
        "--artifact",
        action="append",
        default=[],
        metavar="FILE",
        help="the evidence as you hold it: its bytes must match every digest recorded at intake "
        "of the item whose SHA-256 it has; repeat for several files, each is checked",
    )
    parser.add_argument(
        "--known-checkpoint",
        metavar="FILE",
        help="a checkpoint you kept earlier: the bundle's checkpoint must extend it",
    )
    parser.add_argument(
        "--witness",
        action="append",
        default=[],
        metavar="KEY",
        help="a pinned witness key <name>+<hash>+<base64> (cosignature/v1), or @FILE with one "
        "per line; repeat for several",
    )
    parser.add_argument(
        "--witnesses",
        type=int,
        default=0,
        metavar="K",
        help="step 8 fails unless at least K of the pinned witnesses cosigned the checkpoint",
    )
    parser.add_argument(
        "--max-age",
        type=_duration,
        metavar="AGE",
        help="step 8 fails unless a pinned witness cosigned the checkpoint at most AGE ago "
        "(seconds, or with s, m, h or d): refuses the replay of an old bundle",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of the checklist"
    )
    parser.add_argument(
        "--report", metavar="OUT.html", help="also write the custody report, a printable page"
    )


def _add_procedure_arguments(parser: argparse.ArgumentParser, procedure: Procedure) -> None:
    parser.set_defaults(procedure=procedure)
    parser.add_argument("file", metavar="FILE", help=procedure.file_help)
    _add_key_argument(parser)
    parser.add_argument(
        "--artifact",
        action="append",
        default=[],
        metavar="FILE",
        help=f"the evidence as you hold it: check ({procedure.artifact_step}) holds its bytes "
        "to the size and every digest recorded; repeat for several files, each is checked",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of the checklist"
    )


def _add_key_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key",
        action="append",
        required=True,
        metavar="KEY",
        help="a pinned verifier key <name>+<hash>+<base64>, or @FILE with one key per line "
        "(# starts a comment line); "
        "repeat for several keys (e.g. before and after a key rotation)",
    )


def _run(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed usage or help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.procedure is None:
        return _run_exhibit(parser.prog, args)
    procedure: Procedure = args.procedure
    try:
        keys = read_pinned_keys(args.key)
        data = _read_file(args.file)
        artifacts = [_existing(path) for path in args.artifact]
        try:
            report = procedure.verify(data, keys, artifacts)
        except OSError as exc:
            raise UsageError(f"cannot read {exc.filename}: {exc.strerror}") from None
    except UsageError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except VerificationError as exc:
        _print_outcome(procedure, args, None, exc)
        return EXIT_FAILED
    _print_outcome(procedure, args, report, None)
    return EXIT_VERIFIED


def _run_exhibit(prog: str, args: argparse.Namespace) -> int:
    """Verify an exhibit bundle, print every step, and write the report if asked."""
    try:
        keys = read_pinned_keys(args.key)
        render = _report_renderer() if args.report else None
        bundle: bytes | Path = _read_file("-") if args.file == "-" else _existing(args.file)
        artifacts = [_existing(path) for path in args.artifact]
        known = _read_file(args.known_checkpoint) if args.known_checkpoint else None
        witnesses = _expand_keys(args.witness)
        try:
            verification = verify_bundle(
                bundle,
                keys,
                artifact=artifacts,
                known_checkpoint=known,
                witnesses=witnesses,
                min_witnesses=args.witnesses,
                max_age=args.max_age,
            )
        except OSError as exc:
            raise UsageError(f"cannot read {exc.filename or args.file}: {exc.strerror}") from None
        except PinnedKeyError as exc:
            raise UsageError(f"--witness/--witnesses: {exc}") from None
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _print_exhibit(args.file, args.json, verification)
    if render is not None:
        try:
            Path(args.report).write_text(render(verification), encoding="utf-8")
        except OSError as exc:
            print(f"{prog}: error: cannot write the report {args.report}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    return EXIT_VERIFIED if verification.ok else EXIT_FAILED


def _report_renderer() -> Callable[[ExhibitVerification], str]:
    """The custody report's renderer, imported only when a report is asked for."""
    try:
        from custody.verify.report import render_report
    except ImportError as exc:
        raise UsageError(
            f"--report needs the custody report module (custody.verify.report), which cannot "
            f"be imported: {exc}"
        ) from None
    return render_report


def _existing(path: str) -> Path:
    if not Path(path).is_file():
        raise UsageError(f"cannot read {path}: no such file")
    return Path(path)


def _duration(value: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (value[:-1], units[value[-1]]) if value[-1:] in units else (value, 1)
    if not number.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not an age (e.g. 3600, 90m, 24h, 7d)")
    return int(number) * unit


def read_pinned_keys(values: Sequence[str]) -> list[str]:
    """Expand ``--key`` values (a key, or ``@FILE`` with one per line) and check each parses."""
    keys = _expand_keys(values)
    try:
        pinned_verifiers(keys)
    except PinnedKeyError as exc:
        raise UsageError(f"--key: {exc}") from None
    return keys


def _expand_keys(values: Sequence[str]) -> list[str]:
    """Each value a key, or ``@FILE`` with one per line (lines starting with # skipped)."""
    keys: list[str] = []
    for value in values:
        if value.startswith("@"):
            path = value[1:]
            try:
                lines = Path(path).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"cannot read the key file {path}: {exc}") from None
            # One key per line; lines starting with # are comments (as `custos log keys` writes).
            found = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
            if not found:
                raise UsageError(f"the key file {path} holds no key")
            keys.extend(found)
        else:
            keys.append(value)
    return keys


def _read_file(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def _print_outcome(
    procedure: Procedure,
    args: argparse.Namespace,
    report: Report | None,
    error: VerificationError | None,
) -> None:
    """Print every check with its result: passed up to the failure, then not checked; the
    artifact check is skipped when no artifact was given."""
    file, as_json = args.file, args.json
    failed = error.step if error is not None else len(procedure.checks) + 1
    results = [
        "ok" if n < failed else "FAIL" if n == failed else "not checked"
        for n in range(1, len(procedure.checks) + 1)
    ]
    if not args.artifact and results[procedure.artifact_step - 1] == "ok":
        results[procedure.artifact_step - 1] = "skipped"
    if as_json:
        checks: list[dict[str, Any]] = [
            {"step": n, "check": check, "result": result.lower()}
            for n, (check, result) in enumerate(zip(procedure.checks, results, strict=True), 1)
        ]
        out: dict[str, Any] = {"procedure": procedure.name, "file": file, "checks": checks}
        if error is not None:
            checks[error.step - 1]["error"] = error.message
            out.update(ok=False, failed_step=error.step, error=error.message)
        elif report is not None:
            out.update(ok=True, report=report.as_json())
        print(json.dumps(out, sort_keys=True))
        return
    print(f"Verifying {procedure.name} file {file} against pinned keys only")
    marks = {"not checked": "--", "skipped": "skip"}
    for n, (check, result) in enumerate(zip(procedure.checks, results, strict=True), 1):
        print(f"({n}) {marks.get(result, result):<5} {check}")
        if error is not None and n == error.step:
            print(f"          {error.message}")
    if error is not None:
        print(f"NOT VERIFIED: check ({error.step}) failed")
        return
    if report is not None:
        lines = report.summary()
        width = max(len(label) for label, _ in lines)
        for label, value in lines:
            print(f"  {label:<{width}}  {value}")
    if "skipped" in results:
        print("VERIFIED: every check passed; no artifact was given, so no bytes were checked")
        return
    print("VERIFIED: every check passed")


_MARKS = {PASS: "ok", FAIL: "FAIL"}


def _print_exhibit(file: str, as_json: bool, verification: ExhibitVerification) -> None:
    """Print every step with its result and detail, then the completeness statement."""
    if as_json:
        print(json.dumps({"procedure": EXHIBIT, "file": file, **verification.as_json()}))
        return
    print(f"Verifying exhibit bundle {file} against pinned keys only")
    for step in verification.steps:
        mark = _MARKS.get(step.status) or ("--" if step.detail.startswith(NOT_RUN) else "skip")
        item = f"{step.evidence_id}: " if step.evidence_id else ""
        print(f"({step.number}) {mark:<5} {item}{step.title}")
        indent = " " * 10
        print(
            textwrap.fill(step.detail, width=100, initial_indent=indent, subsequent_indent=indent)
        )
    if verification.completeness_note:
        print(textwrap.fill(f"Completeness: {verification.completeness_note}", width=100))
    if verification.key_fingerprints:
        print(f"Pinned keys that signed: {', '.join(verification.key_fingerprints)}")
    failed = verification.failed
    if failed:
        where = [
            f"({s.number})"
            + (f" {s.evidence_id}" if s.evidence_id else "")
            + (f" event {s.event_index}" if s.event_index is not None else "")
            for s in failed
        ]
        print(f"NOT VERIFIED: failed {'; '.join(where)}")
    else:
        print("VERIFIED: every step passed or did not apply")


if __name__ == "__main__":
    sys.exit(main())
