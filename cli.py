"""The ``custos`` command: thin, it parses, calls the same objects the API uses, and prints.

Every command takes ``--json`` (one JSON object per result per line). Local commands act as
the principal named by ``--as`` (default ``operator``, the admin ``custos init`` creates).

A command's module is imported only when that command runs: ``custos principal list`` loads
neither the verifier nor the order desk, and ``custos --help`` lists the commands from the
table below without importing any.
"""

from __future__ import annotations

import importlib

import click

from commands.common import quiet_key_warnings

# name: where the command is ("module:attribute"), and the summary ``custos --help`` shows
COMMANDS: dict[str, tuple[str, str]] = {
    "audit": ("commands.log:audit", "Recompute the ledger and check every kept checkpoint."),
    "case": ("commands.cases:case", "Cases: open, close, members, courts' grants."),
    "evidence": ("commands.evidence:evidence", "Evidence items: list, show, custody, acts."),
    "export": ("commands.court:export", "Write an exhibit bundle for a court."),
    "ingest": ("commands.evidence:ingest", "Ingest files or folders: hashed, signed, stored."),
    "init": ("commands.home:init", "Create a deployment: config, database, key, operator."),
    "key": ("commands.principals:key", "The service signing key."),
    "log": ("commands.log:log", "The custody ledger."),
    "orders": ("commands.orders:orders", "Production and preservation orders."),
    "principal": ("commands.principals:principal", "Principals and their tokens."),
    "provider": ("commands.orders:provider", "Service providers: the addressees of orders."),
    "report": ("commands.court:report", "Write the items' custody report (HTML or PDF/A)."),
    "serve": ("commands.home:serve", "Serve the API and the pages under gunicorn."),
    "verify": ("commands.court:verify_exhibit", "Verify an exhibit bundle offline."),
    "verify-receipt": ("commands.court:verify_receipt", "Verify a receipt offline."),
    "witness": ("commands.witness:witness", "Run a witness that cosigns other logs."),
}


class LazyGroup(click.Group):
    """A group whose commands are imported when they run (or their own help is asked for)."""

    @property  # type: ignore[override]
    def commands(self) -> dict[str, click.Command]:
        """Every command, imported: for what looks them all over (the interface goldens)."""
        return {name: self._load(name) for name in COMMANDS}

    @commands.setter
    def commands(self, given: dict[str, click.Command]) -> None:
        if given:
            raise TypeError("the commands are listed in cli.COMMANDS")

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name) if cmd_name in COMMANDS else None

    @staticmethod
    def _load(name: str) -> click.Command:
        module, attribute = COMMANDS[name][0].split(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        command.short_help = COMMANDS[name][1]
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, summary) for name, (_, summary) in sorted(COMMANDS.items())])


@click.group(cls=LazyGroup)
@click.option(
    "--home",
    envvar="CUSTOS_HOME",
    default="./var",
    show_default=True,
    help="Deployment home (CUSTOS_HOME).",
)
@click.pass_context
def main(ctx: click.Context, home: str) -> None:
    """Custos: evidence preservation with a verifiable chain of custody."""
    ctx.ensure_object(dict)
    ctx.obj["home"] = home
    quiet_key_warnings(ctx)


if __name__ == "__main__":
    main()
