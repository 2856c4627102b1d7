"""``custos ingest`` and ``custos evidence``: on the local home, or against a server."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from commands.common import (
    Command,
    F,
    Group,
    api_backend,
    emit,
    emit_table,
    failure,
    server_options,
)
from commands.progress import progress_bar
from commands.render import act_text, event_line, item_text, state_words
from commands.sources import walk_sources
from custody.acts import ACT_FIELDS, SEIZURE, SEIZURE_FIELDS, TIME, ActField
from custody.digests import (
    parse_expected,
)
from custody.errors import CustosError
from custody.evidence import recordable_file_name

if TYPE_CHECKING:
    # Loaded by the commands that use them: they bring Flask and the API's schemas.
    from commands.backends import Evidence


def evidence_backend(
    ctx: click.Context, server: str | None, token: str | None, as_name: str
) -> AbstractContextManager[Evidence]:
    from commands.backends import LocalEvidence, RemoteEvidence

    return api_backend(ctx, server, token, as_name, LocalEvidence, RemoteEvidence)


def intake_metadata(kind: str, case: str, exhibit: str, **optional: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"kind": kind, "case": case, "exhibit": exhibit}
    acquisition = {
        k: optional.pop(k) for k in ("tool", "acquired_by", "acquired_at") if optional.get(k)
    }
    if acquisition:
        metadata["acquisition"] = acquisition
    metadata.update({k: v for k, v in optional.items() if v})
    return metadata


@click.command(cls=Command)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--case", required=True)
@click.option(
    "--exhibit",
    required=True,
    help="Exhibit number (with several files, or a folder: a prefix, -1, -2 ... added).",
)
@click.option(
    "--description", help="Default: the file name (under a folder: its path from the folder)."
)
@click.option("--parent", help="The exhibit this one was derived from (evidence id).")
@click.option("--acquired-by")
@click.option("--acquired-at", help="RFC 3339 time of acquisition.")
@click.option("--tool", help="Acquisition tool and version.")
@click.option("--authority", help="Warrant or order reference.")
@click.option(
    "--expect", multiple=True, help="ALG:HEX the acquisition recorded (sha256, sha1, md5 ...)."
)
@server_options
@click.pass_context
def ingest(
    ctx: click.Context,
    paths: tuple[Path, ...],
    case: str,
    exhibit: str,
    description: str | None,
    parent: str | None,
    acquired_by: str | None,
    acquired_at: str | None,
    tool: str | None,
    authority: str | None,
    expect: tuple[str, ...],
    server: str | None,
    token: str | None,
    as_name: str,
    as_json: bool,
) -> None:
    """Ingest files, or every file under a folder: hashed as they stream in, signed, stored
    write-once, one ledger event each. A file that changes while it is read is refused."""
    try:
        expected = dict(parse_expected(e) for e in expect)
    except CustosError as exc:
        raise click.BadParameter(str(exc), param_hint="--expect") from None
    sources = list(walk_sources(paths))
    if not sources:
        raise click.UsageError("no file to ingest: the folders given hold no regular file")
    if expected and len(sources) > 1:
        raise click.BadParameter("--expect applies to a single file", param_hint="--expect")
    with evidence_backend(ctx, server, token, as_name) as backend:
        in_case = ContentIndex(backend.list(case, None))
        for number, source in enumerate(sources, start=1):
            # A name that is not UTF-8 is recorded escaped, before anything is stored.
            shown_name = recordable_file_name(source.name)
            shown_path = recordable_file_name(str(source.path))
            metadata = intake_metadata(
                "digital",
                case,
                exhibit if len(sources) == 1 else f"{exhibit}-{number}",
                description=description or recordable_file_name(source.name),
                parent=parent,
                acquired_by=acquired_by,
                acquired_at=acquired_at,
                tool=tool,
                authority=authority,
            )
            with progress_bar(source.path.stat().st_size, shown_name) as progress:
                try:
                    done = backend.ingest(source.path, metadata, expected, progress)
                except CustosError as exc:
                    raise failure(exc, shown_path, "; nothing was recorded") from None
            earlier = in_case.same_content(done)
            text = (
                f"{done['exhibit']}  {done['id']}  sha256:{done['digests']['sha256']}  "
                f"ledger index {done['ledger_index']}  {shown_name}"
            )
            if earlier:
                named = ", ".join(f"{item['exhibit']} ({item['id']})" for item in earlier)
                text += f"\n  the same content is already in case {case}: {named}"
            emit(
                as_json,
                {
                    **done,
                    "path": shown_path,
                    "same_content_in_case": [item["id"] for item in earlier],
                },
                text,
            )
            in_case.add(done)


class ContentIndex:
    """The case's items by SHA-256, to say when an ingest repeats content already there."""

    def __init__(self, items: Iterable[dict[str, Any]]) -> None:
        self._by_sha256: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            self.add(item)

    def add(self, item: dict[str, Any]) -> None:
        sha256 = (item.get("digests") or {}).get("sha256")
        if sha256:
            self._by_sha256.setdefault(sha256, []).append(item)

    def same_content(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        """The items, other than ``item``, whose SHA-256 is ``item``'s."""
        sha256 = item["digests"]["sha256"]
        return [other for other in self._by_sha256.get(sha256, []) if other["id"] != item["id"]]


@click.group(cls=Group)
def evidence() -> None:
    """Evidence items: list, show, custody history, acts, download, physical items."""


def _seizure_options(command: F) -> F:
    """``--seizure-<field>`` for each field of a seizure (custody.acts.SEIZURE_FIELDS)."""
    for spec in reversed(SEIZURE_FIELDS):
        command = click.option(
            f"--seizure-{spec.name}",
            f"seizure_{spec.name}",
            metavar="TIME" if spec.type == TIME else "TEXT",
            help=f"{spec.label[:1].upper()}{spec.label[1:]} (required).",
        )(command)
    return command


@evidence.command("register")
@click.option("--case", required=True)
@click.option("--exhibit", required=True)
@click.option("--description", required=True)
@click.option("--parent")
@click.option("--authority")
@_seizure_options
@server_options
@click.pass_context
def evidence_register(
    ctx: click.Context,
    /,
    case: str,
    exhibit: str,
    description: str,
    parent: str | None,
    authority: str | None,
    server: str | None,
    token: str | None,
    as_name: str,
    as_json: bool,
    **seizure: str | None,
) -> None:
    """Register a physical item (a seized device, a document): no bytes, the same custody.
    Its seizure is recorded with it: when, where, by whom, under what authority, packaging."""
    metadata = intake_metadata(
        "physical", case, exhibit, description=description, parent=parent, authority=authority
    )
    metadata[SEIZURE] = {
        name.removeprefix("seizure_"): value for name, value in seizure.items() if value
    }
    with evidence_backend(ctx, server, token, as_name) as backend:
        done = backend.register(metadata)
    emit(
        as_json,
        done,
        f"registered {done['case']} / {done['exhibit']}, a physical item: id {done['id']}, "
        f"ledger index {done['ledger_index']}",
    )


@evidence.command("list")
@click.option("--case")
@click.option("--exhibit")
@server_options
@click.pass_context
def evidence_list(
    ctx: click.Context,
    case: str | None,
    exhibit: str | None,
    server: str | None,
    token: str | None,
    as_name: str,
    as_json: bool,
) -> None:
    """List items, oldest first."""
    with evidence_backend(ctx, server, token, as_name) as backend:
        emit_table(
            as_json,
            backend.list(case, exhibit),
            ("ID", "KIND", "CASE", "EXHIBIT", "STATE", "DESCRIPTION"),
            lambda item: (
                item["id"],
                item["kind"],
                item["case"],
                item["exhibit"],
                state_words(item.get("state") or {}),
                item.get("description"),
            ),
            "no evidence items",
        )


@evidence.command("show")
@click.argument("evidence_id")
@server_options
@click.pass_context
def evidence_show(
    ctx: click.Context,
    evidence_id: str,
    server: str | None,
    token: str | None,
    as_name: str,
    as_json: bool,
) -> None:
    """One item: its description, digests, state and the acts its state allows."""
    with evidence_backend(ctx, server, token, as_name) as backend:
        item = backend.show(evidence_id)
    emit(as_json, item, item_text(item))


@evidence.command("custody")
@click.argument("evidence_id")
@server_options
@click.pass_context
def evidence_custody(
    ctx: click.Context,
    evidence_id: str,
    server: str | None,
    token: str | None,
    as_name: str,
    as_json: bool,
) -> None:
    """The item's custody history: every event, in ledger order."""
    with evidence_backend(ctx, server, token, as_name) as backend:
        history = backend.custody(evidence_id)
    names = {entry["id"]: entry["name"] for entry in history.get("names") or []}
    for event in history["events"]:
        emit(as_json, event, event_line(event, names=names))


@evidence.group("event")
@click.argument("evidence_id")
@click.pass_context
def evidence_event(ctx: click.Context, evidence_id: str) -> None:
    """Record a custody act, e.g. ``event ev_.. transferred --from A --to B ...``; each act's
    options are its fields (custody.acts), also given as ``-f NAME=VALUE``."""
    ctx.obj["evidence_id"] = evidence_id


def _act_option(spec: ActField) -> Callable[[F], F]:
    required = "required" if spec.required else "optional"
    return click.option(
        f"--{spec.name.replace('_', '-')}",
        f"field_{spec.name}",
        metavar="TEXT",
        help=f"{spec.label[:1].upper()}{spec.label[1:]} ({required}).",
    )


def _act_command(act: str) -> click.Command:
    def record(
        ctx: click.Context,
        /,
        fields: tuple[str, ...],
        server: str | None,
        token: str | None,
        as_name: str,
        as_json: bool,
        **options: str | None,
    ) -> None:
        data = {name[len("field_") :]: v for name, v in options.items() if v is not None}
        for item in fields:
            name, sep, value = item.partition("=")
            if not sep:
                raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--field")
            data[name] = value
        with evidence_backend(ctx, server, token, as_name) as backend:
            done = backend.act(ctx.obj["evidence_id"], act, data)
        emit(as_json, done, act_text(done))

    command = click.pass_context(record)
    for spec in reversed(ACT_FIELDS[act]):
        command = _act_option(spec)(command)
    command = click.option(
        "--field", "-f", "fields", multiple=True, metavar="NAME=VALUE", help="A field; repeat."
    )(command)
    command = server_options(command)
    labels = ", ".join(f.label for f in ACT_FIELDS[act])
    return click.command(act.split(".", 1)[1], cls=Command, help=f"Record {act}: {labels}.")(
        command
    )


for _act in ACT_FIELDS:
    evidence_event.add_command(_act_command(_act))


@evidence.command("download")
@click.argument("evidence_id")
@click.option("--purpose", required=True, help="Why: recorded in the evidence.accessed event.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@server_options
@click.pass_context
def evidence_download(
    ctx: click.Context,
    evidence_id: str,
    purpose: str,
    output: Path,
    server: str | None,
    token: str | None,
    as_name: str,
    as_json: bool,
) -> None:
    """Download an item's bytes (recorded as evidence.accessed), re-checking its digests."""
    with evidence_backend(ctx, server, token, as_name) as backend:
        size = int(backend.show(evidence_id).get("size") or 0)
        partial = output.with_name(output.name + ".part")
        try:
            with partial.open("wb") as out, progress_bar(size, output.name) as progress:
                done = backend.download(evidence_id, purpose, out, progress)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(output)
    emit(
        as_json,
        {**done, "path": str(output)},
        f"wrote {output}: its sha256 {done['digests']['sha256']} is the one recorded; the "
        f"access is ledger index {done['access_index']}",
    )
