"""The ``custos`` command: thin, it parses, calls the same objects the API uses, and prints.

Every command takes ``--json`` (one JSON object per result per line). Local commands act as
the principal named by ``--as`` (default ``operator``, the admin ``custos init`` creates).
"""

from __future__ import annotations

import click

from commands.common import quiet_key_warnings
from commands.court import export, report, verify_exhibit, verify_receipt
from commands.evidence import evidence, ingest
from commands.home import init, serve
from commands.log import audit, log
from commands.orders import orders, provider
from commands.principals import key, principal
from commands.witness import witness


@click.group()
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


for command in (
    init,
    serve,
    principal,
    provider,
    key,
    log,
    ingest,
    evidence,
    orders,
    verify_receipt,
    export,
    verify_exhibit,
    report,
    audit,
    witness,
):
    main.add_command(command)


if __name__ == "__main__":
    main()
