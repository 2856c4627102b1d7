"""What the benchmarks share: timestamped progress lines and the table of measured rows."""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_T0 = time.perf_counter()


def say(message: str) -> None:
    """A progress line, stamped with the seconds since the benchmark started."""
    print(f"[{time.perf_counter() - _T0:7.1f}s] {message}", flush=True)


@dataclass
class Row:
    """One measure: its figure, the goal it is held to, PASS/FAIL, and a peer's figure."""

    measure: str
    figure: str
    goal: str = ""
    passed: bool | None = None
    peer: str = ""

    @property
    def verdict(self) -> str:
        return "" if self.passed is None else ("PASS" if self.passed else "FAIL")


@dataclass
class Results:
    """The rows and notes of one run; each row is printed as it is added."""

    peer_label: str = "peer"
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        tag = f"  [{row.verdict}]" if row.verdict else ""
        goal = f"  (goal {row.goal})" if row.goal else ""
        peer = f"  | {self.peer_label}: {row.peer}" if row.peer else ""
        say(f"  => {row.measure}: {row.figure}{goal}{tag}{peer}")


ROOT = Path(__file__).resolve().parent.parent


def code_version(measured: Sequence[str]) -> str:
    """The commit measured, whether the ``measured`` files and folders differed from it, and
    a digest of their Python sources (read-only: this never changes the repository)."""
    digest = hashlib.sha256()
    paths: list[Path] = []
    for name in measured:
        target = ROOT / name
        paths.extend(sorted(target.rglob("*.py")) if target.is_dir() else [target])
    for path in paths:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    described = ", ".join(f"{n}/" if (ROOT / n).is_dir() else n for n in measured)
    sources = f"{described} sources sha256 {digest.hexdigest()[:12]}"
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = (
            subprocess.run(
                ["git", "diff", "--quiet", "HEAD", "--", *measured],
                cwd=ROOT,
                capture_output=True,
            ).returncode
            != 0
        )
    except (OSError, subprocess.CalledProcessError):
        return sources
    return f"commit {head}" + (" with uncommitted changes" if dirty else "") + f"; {sources}"


def load() -> str:
    """The 1/5/15-minute load averages."""
    try:
        return "/".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def write_section(path: Path, section: str, begin_mark: str, end_mark: str, intro: str) -> None:
    """Replace the section between its markers in ``path``, or append it (after ``intro``
    when the file is new); nothing outside the markers is touched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(intro + section, "utf-8")
        return
    text = path.read_text("utf-8")
    begin, end = text.find(begin_mark), text.find(end_mark)
    if begin != -1 and end > begin:
        text = text[:begin] + section + text[end + len(end_mark) :].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, "utf-8")


DOCS = ROOT / "docs" / "benchmarks.md"


def add_docs_options(parser: argparse.ArgumentParser) -> None:
    """``--docs FILE`` and ``--no-docs``: where a full run writes its figures."""
    parser.add_argument("--docs", type=Path, help=f"write the figures here (default {DOCS.name})")
    parser.add_argument("--no-docs", action="store_true", help="do not write any docs file")


def docs_target(args: argparse.Namespace, small: bool) -> Path | None:
    """Where to write: ``--docs``, else docs/benchmarks.md for a full run, never for a smoke
    run (``small``) unless asked, and nowhere with ``--no-docs``."""
    if args.no_docs:
        return None
    if args.docs is not None:
        return Path(args.docs)
    return None if small else DOCS


def markdown_table(results: Results, columns: Sequence[str] = ("goal", "verdict")) -> list[str]:
    """The rows as a Markdown table (measure, figure and ``columns`` of each Row: goal,
    verdict, peer), then the notes as a list."""
    titles = {"goal": "goal", "verdict": "verdict", "peer": results.peer_label}
    header = ["measure", "figure", *(titles[c] for c in columns)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return [
        line(header),
        "| " + " | ".join("---" for _ in header) + " |",
        *[
            line([r.measure, r.figure, *(str(getattr(r, c)) for c in columns)])
            for r in results.rows
        ],
        "",
        *[f"- {note}" for note in results.notes],
    ]


def print_table(results: Results) -> None:
    """The rows as a plain-text table on standard output, with goal, verdict and peer."""
    headers = ("Measure", "Figure", "Goal", "", results.peer_label)
    rows = [(r.measure, r.figure, r.goal, r.verdict, r.peer) for r in results.rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    rule = "  ".join("-" * w for w in widths)
    print()
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print(rule)
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    print(rule)


def publish(
    results: Results,
    docs: Path | None,
    script: str,
    argv: Sequence[str],
    section: Callable[[str], str],
    marks: tuple[str, str],
    intro: str = "# Benchmarks\n\n",
) -> None:
    """Print the notes and, for a run that writes docs, the section ``section(command)`` makes
    between ``marks`` in ``docs``; the command is ``script`` with the run's arguments."""
    for note in results.notes:
        say(f"note: {note}")
    if docs is None:
        return
    command = " ".join([".venv/bin/python", script, *(shlex.quote(a) for a in argv)])
    write_section(docs, section(command), marks[0], marks[1], intro)
    say(f"wrote {docs}")
