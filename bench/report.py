"""What the benchmarks share: timestamped progress lines and the table of measured rows."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

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
