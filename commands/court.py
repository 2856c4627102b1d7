"""``custos export``, ``verify``, ``verify-receipt`` and ``report``: what a court receives and
checks offline."""

from __future__ import annotations

import io
import json
import sys
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from commands.common import (
    Command,
    as_option,
    deployment,
    emit,
    failure,
    json_option,
    server_options,
)
from commands.progress import progress_bar
from custody.errors import CustosError

if TYPE_CHECKING:
    # Loaded by the commands that use them: they bring Flask and the API's schemas; and
    # what a command needs only when it runs (SQLAlchemy, the stores, the bundle writers) is
    # imported there, so that ``custos --help`` and the offline verifiers start at once.
    from commands.backends import Progress
    from custody.events import Actor
    from storage.deployment import Deployment


@click.command(
    "verify-receipt",
    cls=Command,
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def verify_receipt(args: tuple[str, ...]) -> None:
    """Verify a receipt file offline against pinned keys: FILE --key VKEY [--key ...] [--json]."""
    from custody.verify.__main__ import verify_command

    sys.exit(verify_command("receipt", list(args), prog="custos verify-receipt"))


def case_export(dep: Deployment, by: Actor, evidence_id: str) -> dict[str, Any]:
    """The item's provenance as a CASE/UCO JSON-LD document."""
    from custody.case_export import InvalidMaterial

    try:
        return dep.case_exports.document(evidence_id, by)
    except InvalidMaterial as exc:
        raise click.ClickException(f"{evidence_id}: {exc}") from None


@click.command(cls=Command)
@click.argument("evidence_ids", metavar="EVIDENCE_ID...", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--with-content", is_flag=True, help="Include the bytes (recorded as evidence.accessed)."
)
@click.option(
    "--known-checkpoint",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A checkpoint kept earlier: the bundle proves the log extends it.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["exhibit", "case"]),
    default="exhibit",
    show_default=True,
    help="exhibit: the bundle docs/bundle.md describes; case: CASE/UCO JSON-LD of one item.",
)
@server_options
@click.pass_context
def export(
    ctx: click.Context,
    evidence_ids: tuple[str, ...],
    output: Path,
    with_content: bool,
    known_checkpoint: Path | None,
    output_format: str,
    server: str | None,
    token: str | None,
    as_name: str,
    as_json: bool,
) -> None:
    """Write an exhibit bundle for a court to verify offline (custos/exhibit/v3), or an item's
    provenance as CASE JSON-LD; with --server, an item's bundle as that server makes it."""
    if server:
        if output_format != "exhibit":
            raise click.UsageError("with --server: the exhibit format only")
        remote_export(server, token, evidence_ids, output, with_content, known_checkpoint, as_json)
        return
    if output_format == "case" and (len(evidence_ids) > 1 or with_content or known_checkpoint):
        raise click.UsageError(
            "--format case takes one evidence id, without --with-content or --known-checkpoint"
        )
    known = known_checkpoint.read_bytes() if known_checkpoint else None
    with deployment(ctx) as dep:
        principal = dep.principals.get(as_name)
        if not principal.active:
            raise click.ClickException(f"{as_name!r} is revoked")
        partial = output.with_name(output.name + ".part")
        try:
            if output_format == "case":
                document = case_export(dep, principal.actor, evidence_ids[0])
                partial.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
                partial.replace(output)
                emit(
                    as_json,
                    {"format": "case", "path": str(output)},
                    f"wrote {output}: the provenance of {evidence_ids[0]} as CASE/UCO JSON-LD",
                )
                return
            from custody.evidence import EXPORT_ROLES, require_role

            # The role first, as the export itself checks it: a role that may not export is
            # told so (403), before it learns whether the items exist for it (404).
            require_role(principal.role, EXPORT_ROLES, "export exhibit bundles")
            records = [
                dep.handling.get(evidence_id, principal.actor) for evidence_id in evidence_ids
            ]
            size = sum(r.size or 0 for r in records if r.kind == "digital")
            bar: AbstractContextManager[Progress | None] = (
                progress_bar(size, output.name) if with_content else nullcontext()
            )
            with partial.open("w+b") as out, bar as progress:
                summary = dep.bundles.export(
                    evidence_ids,
                    out,
                    by=principal.actor,
                    with_content=with_content,
                    known_checkpoint=known,
                    progress=progress,
                )
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(output)
    accessed = "".join(f", evidence.accessed #{i}" for i in summary.accessed)
    verified = "VERIFIED" if summary.verified else "NOT VERIFIED (see report.html)"
    text = (
        f"{output}  {len(summary.items)} item(s), {len(summary.members)} members, "
        f"checkpoint {summary.checkpoint_size}{accessed}; the service's own check: {verified}"
    )
    emit(as_json, {**summary.as_json(), "path": str(output)}, text)


def kept_checkpoint_size(path: Path) -> int:
    """The tree size a kept checkpoint file states (its signatures are the verifier's to
    check, against the court's pinned keys)."""
    from custody.checkpoint import Checkpoint, MalformedCheckpoint

    body, _, _ = path.read_bytes().partition(b"\n\n")
    try:
        return Checkpoint.from_text(body.decode("utf-8") + "\n").size
    except (UnicodeDecodeError, MalformedCheckpoint) as exc:
        raise click.ClickException(f"{path}: not a checkpoint: {exc}") from None


def remote_export(
    server: str,
    token: str | None,
    evidence_ids: tuple[str, ...],
    output: Path,
    with_content: bool,
    known_checkpoint: Path | None,
    as_json: bool,
) -> None:
    """``POST /v1/bundles`` into ``output`` (through ``output.part``): the server bundles the
    items and, for a kept checkpoint, proves its log extends the one it signed at that size
    (the court's own copy is what ``custos verify --known-checkpoint`` then checks)."""
    from commands.client import CustosClient

    if not token:
        raise click.UsageError("--server needs --token (or CUSTOS_TOKEN)")
    request: dict[str, Any] = {"evidence_ids": list(evidence_ids), "with_content": with_content}
    if known_checkpoint is not None:
        request["known_checkpoint_size"] = kept_checkpoint_size(known_checkpoint)
    partial = output.with_name(output.name + ".part")
    try:
        with partial.open("wb") as out:
            CustosClient(server, token).download("/v1/bundles", {}, out.write, payload=request)
    except BaseException as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, CustosError):
            raise failure(exc) from None
        raise
    partial.replace(output)
    size = output.stat().st_size
    emit(
        as_json,
        {"path": str(output), "items": list(evidence_ids), "server": server, "size": size},
        f"{output}  {len(evidence_ids)} item(s), {size} bytes, from {server}",
    )


@click.command(
    "verify",
    cls=Command,
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def verify_exhibit(args: tuple[str, ...]) -> None:
    """Verify an exhibit bundle offline against pinned keys: EXHIBIT.zip --key VKEY [--key ...]
    [--artifact FILE ...] [--known-checkpoint FILE] [--witness KEY ... --witnesses K]
    [--max-age AGE] [--json] [--report OUT.html]."""
    from custody.verify.__main__ import verify_command

    sys.exit(verify_command("bundle", list(args), prog="custos verify"))


@click.command(cls=Command)
@click.argument("evidence_ids", metavar="EVIDENCE_ID...", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the HTML page (with --pdf, the PDF).",
)
@click.option(
    "--pdf",
    is_flag=True,
    help="Write a PDF/A-3b record instead, with the exhibit bundle (without content) embedded.",
)
@as_option
@json_option
@click.pass_context
def report(
    ctx: click.Context,
    evidence_ids: tuple[str, ...],
    output: Path,
    pdf: bool,
    as_name: str,
    as_json: bool,
) -> None:
    """Write the items' custody report: their exhibit bundle, verified with this deployment's
    own keys, as one printable HTML page (the bundle's own report.html), or with --pdf as a
    PDF/A-3b record that embeds the bundle; exit 1 (report written) when it does not verify."""
    bundle = io.BytesIO()
    with deployment(ctx) as dep:
        principal = dep.principals.get(as_name)
        if not principal.active:
            raise click.ClickException(f"{as_name!r} is revoked")
        exported = dep.bundles.export(evidence_ids, bundle, by=principal.actor)
    from custody.pdf_record import PdfUnavailable, write_pdf_record
    from custody.verify.report import render_report

    verification = exported.verification
    assert verification is not None  # exported with its report
    page = render_report(verification)
    partial = output.with_name(output.name + ".part")
    try:
        if pdf:
            title = "Custody report: " + ", ".join(item.exhibit for item in verification.items)
            with partial.open("wb") as out:
                write_pdf_record(
                    page, bundle.getvalue(), out, title=title, made_at=datetime.now(UTC)
                )
        else:
            partial.write_text(page, encoding="utf-8")
    except PdfUnavailable as exc:
        partial.unlink(missing_ok=True)
        raise click.ClickException(str(exc)) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(output)
    failed = sorted({step.number for step in verification.failed})
    verdict = "VERIFIED" if verification.ok else f"NOT VERIFIED (failed step {failed})"
    summary = {
        "path": str(output),
        "ok": verification.ok,
        "items": [item.evidence_id for item in verification.items],
        "failed_steps": failed,
    }
    emit(as_json, summary, f"{verdict}: {output}")
    if not verification.ok:
        sys.exit(1)
