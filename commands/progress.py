"""Progress displays of the ``custos`` commands, on standard error (or, for ``audit --objects
--json``, as JSON lines on standard output)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    # Loaded by the commands that use them: they bring Flask and the API's schemas.
    from commands.backends import Progress
    from custody.scrub import BlobCheck, ScrubPlan


@contextmanager
def progress_bar(length: int, label: str) -> Iterator[Progress]:
    """A progress bar on standard error (shown on a terminal; silent otherwise)."""
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update


class ScrubBar:
    """``audit --objects`` progress for people: a bar of the bytes read, on standard error."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.done = 0

    def planned(self, plan: ScrubPlan) -> None:
        label = f"reading {plan.blobs} blobs, {plan.bytes / 2**20:,.1f} MiB"
        self.bar = click.progressbar(
            length=max(plan.bytes, 1),
            label=label,
            file=sys.stderr,
            item_show_func=lambda _: f"{self.done / 2**20:,.0f} MiB",
        )

    def read(self, size: int) -> None:
        self.done += size
        self.bar.update(size)

    def checked(self, check: BlobCheck) -> None:
        pass

    def close(self) -> None:
        if self.bar is not None:
            self.bar.render_finish()


class ScrubLines:
    """``audit --objects --json`` progress for programs: a line for the plan and one per blob
    checked (the summary follows last)."""

    def __init__(self) -> None:
        self.done = self.total = 0

    def planned(self, plan: ScrubPlan) -> None:
        self.total = plan.bytes
        click.echo(json.dumps({"scrub": "planned", **plan.__dict__}, sort_keys=True))

    def read(self, size: int) -> None:
        self.done += size

    def checked(self, check: BlobCheck) -> None:
        line = {"scrub": "checked", **check.__dict__, "read": self.done, "total": self.total}
        click.echo(json.dumps(line, sort_keys=True))

    def close(self) -> None:
        pass
