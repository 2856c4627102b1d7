"""Shared by the ``custos`` commands: the ``--json``, ``--as`` and ``--server`` options,
output, the deployment a command acts on, and the choice of the local home or a server."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

from custody.errors import CustosError

if TYPE_CHECKING:
    # What a command needs only when it runs (SQLAlchemy, the stores, the bundle writers)
    # is imported there, so that ``custos --help`` and the offline commands start at once.
    from commands.client import CustosClient
    from custody.events import Actor
    from custody.principals import Principal
    from storage.config import Config
    from storage.deployment import Deployment

F = TypeVar("F", bound=Callable[..., Any])
B = TypeVar("B")


class Command(click.Command):
    """A command that names every required option or argument missing at once, rather than
    the first alone (click's own error, for one, is kept)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        missing = self.missing(ctx, args)
        if len(missing) > 1:
            raise click.UsageError(f"Missing, and required: {', '.join(missing)}.", ctx)
        return super().parse_args(ctx, args)

    def missing(self, ctx: click.Context, args: list[str]) -> list[str]:
        """The required parameters ``args`` and the environment give no value, by name."""
        asks_help = set(args) & set(self.get_help_option_names(ctx))
        if ctx.resilient_parsing or asks_help:
            return []
        try:
            given, _, _ = self.make_parser(ctx).parse_args(args=list(args))
        except click.UsageError:
            return []  # click says what is wrong with the line itself
        return [
            f"'{param.opts[0]}'"
            if isinstance(param, click.Option)
            else f"'{param.human_readable_name}'"
            for param in self.get_params(ctx)
            if param.required
            and given.get(param.name) in (None, ())
            and param.resolve_envvar_value(ctx) is None
        ]


class Group(click.Group):
    """A group whose commands (and groups) name every missing option at once."""

    command_class = Command
    group_class = type


def json_option(command: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")(
        command
    )


def as_option(command: F) -> F:
    from custody.principals import OPERATOR

    return click.option(
        "--as", "as_name", default=OPERATOR, show_default=True, help="Principal to act as."
    )(command)


def emit(as_json: bool, obj: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(obj, sort_keys=True) if as_json else text)


def emit_table(
    as_json: bool,
    items: Iterable[dict[str, Any]],
    headers: Sequence[str],
    row: Callable[[dict[str, Any]], Sequence[Any]],
    empty: str,
) -> None:
    """A list: for programs one JSON object per item as it comes; for people a table with a
    header line, once every row is read, or a sentence saying there is nothing to list."""
    from commands.render import table

    rows = []
    for item in items:
        if as_json:
            click.echo(json.dumps(item, sort_keys=True))
        else:
            rows.append(row(item))
    if not as_json:
        click.echo(table(headers, rows) if rows else empty)


def field_errors_of(error: CustosError) -> list[tuple[str, str]]:
    """The fields an error names, each with why: the domain's own (local) or the API's
    problem ``errors`` (``--server``); none for any other error."""
    from commands.client import ApiError
    from custody.errors import FieldErrors, FieldFault

    if isinstance(error, FieldErrors):
        return list(error.errors)
    if isinstance(error, FieldFault):
        return [error.pair()]
    if isinstance(error, ApiError):
        listed = error.body.get("errors")
        if isinstance(listed, list):
            return [
                (str(e.get("field")), str(e.get("reason")))
                for e in listed
                if isinstance(e, dict) and "field" in e
            ]
    return []


def error_text(error: CustosError, about: str = "", then: str = "") -> str:
    """An error for people: one line saying what failed (after ``about``, followed by
    ``then``), and for fields at fault one line each, ``field: reason``, every one of them."""
    from commands.render import shown

    prefix = f"{about}: " if about else ""
    pairs = field_errors_of(error)
    if not pairs:
        return f"{prefix}{error}{then}"
    status = getattr(error, "status", None)
    head = f"HTTP {status}: " if status else ""
    fields = "invalid fields" if len(pairs) > 1 else "invalid field"
    lines = [f"{prefix}{head}{fields}{then}"]
    lines += [f"  {shown(name)}: {shown(reason)}" for name, reason in pairs]
    return "\n".join(lines)


def failure(error: CustosError, about: str = "", then: str = "") -> click.ClickException:
    """The ``click`` error a command exits with, as ``error_text`` words it."""
    return click.ClickException(error_text(error, about, then))


KEY_WARNINGS = "custos.keys"
"""The logger that warns of an unencrypted key each time a process loads the key ring."""

_warned: set[str] = set()


def quiet_key_warnings(ctx: click.Context) -> None:
    """Every command loads the key ring; the unencrypted-key warning is for ``init`` and
    ``audit`` to give (``warn_unencrypted_keys``), not every command, and never on a progress
    bar's line. Called as the command line starts; the logger is as it was once the command
    is done, so a program that runs commands in its own process (a test) keeps its logs."""
    logger = logging.getLogger(KEY_WARNINGS)
    level = logger.level
    logger.setLevel(logging.ERROR)
    ctx.call_on_close(lambda: logger.setLevel(level))


def warn_unencrypted_keys(config: Config) -> None:
    """Say on standard error, once per process, which signing keys are stored unencrypted."""
    from storage.keyfiles import unencrypted_keys

    for path in unencrypted_keys(config):
        if str(path) not in _warned:
            _warned.add(str(path))
            click.echo(
                f"warning: the signing key {path} is stored unencrypted; set "
                "CUSTOS_KEY_PASSPHRASE before `custos init` to encrypt it",
                err=True,
            )


@contextmanager
def deployment(ctx: click.Context) -> Iterator[Deployment]:
    from storage.config import load_config
    from storage.deployment import open_deployment

    try:
        opened = open_deployment(load_config(ctx.obj["home"]))
    except CustosError as exc:
        raise failure(exc) from None
    try:
        yield opened
    except CustosError as exc:
        raise failure(exc) from None
    finally:
        opened.close()


def acting_principal(dep: Deployment, name: str) -> Principal:
    """The active principal ``--as`` names; what its role may do is the domain's rule."""
    principal = dep.principals.get(name)
    if not principal.active:
        raise click.ClickException(f"{name!r} is revoked")
    return principal


def server_options(command: F) -> F:
    command = click.option("--server", envvar="CUSTOS_SERVER", help="Server URL (CUSTOS_SERVER).")(
        command
    )
    command = click.option("--token", envvar="CUSTOS_TOKEN", help="Bearer token (CUSTOS_TOKEN).")(
        command
    )
    return as_option(json_option(command))


@contextmanager
def api_backend(
    ctx: click.Context,
    server: str | None,
    token: str | None,
    as_name: str,
    local: Callable[[Deployment, Actor], B],
    remote: Callable[[CustosClient], B],
) -> Iterator[B]:
    """The server's API when ``--server`` is given, else the local home as ``--as``."""
    try:
        if server:
            if not token:
                raise click.UsageError("--server needs --token (or CUSTOS_TOKEN)")
            from commands.client import CustosClient

            yield remote(CustosClient(server, token))
            return
        with deployment(ctx) as dep:
            principal = dep.principals.get(as_name)
            if not principal.active:
                raise click.ClickException(f"{as_name!r} is revoked")
            yield local(dep, principal.actor)
    except CustosError as exc:
        raise failure(exc) from None
