"""``custos case``: open and close cases, manage their members, grant courts (local home)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from commands.common import acting_principal, as_option, deployment, emit, json_option

if TYPE_CHECKING:
    from custody.cases import Case
    from storage.deployment import Deployment


@click.group("case")
def case() -> None:
    """Cases: the records items and orders belong to, their members, courts' grants."""


def _case_id(dep: Deployment, given: str) -> str:
    """A case named by its id or its reference (whether the caller may know of it is the
    domain's to say)."""
    from custody.cases import is_case_id

    if is_case_id(given):
        return given
    found = dep.cases.store.by_reference(given)
    return found.id if found is not None else given


def _line(case: Case) -> str:
    state = "open" if case.closed_at is None else f"closed {case.closed_at}"
    return f"{case.id}  {case.reference}  {case.title}  ({case.authority}, {state})"


def _shown(dep: Deployment, case_id: str, as_name: str, as_json: bool) -> None:
    actor = acting_principal(dep, as_name).actor
    view: dict[str, Any] = dep.cases.view(dep.cases.get(case_id, actor))
    ids = [m["principal"] for m in view["members"]] + [g["court"] for g in view["grants"]]
    names = dep.principals.shown_names(ids)

    def who(principal_id: str, role: str = "") -> str:
        """The principal by name, its role in the case and its id: ``alice (lead, pr_…)``."""
        said = ", ".join(part for part in (role, principal_id) if part)
        name = names.get(principal_id)
        return f"{name} ({said})" if name else (f"{principal_id} ({role})" if role else said)

    members = ", ".join(who(m["principal"], m["role"]) for m in view["members"])
    grants = "".join(
        f"\n  grant {g['id']}: {who(g['court'])} for {g['proceeding']} until {g['ends_at']}"
        + (f" ({', '.join(g['exhibits'])})" if g["exhibits"] else "")
        for g in view["grants"]
    )
    text = f"{view['id']}  {view['reference']}  {view['title']}\n  members: {members}{grants}"
    emit(as_json, view, text)


@case.command("open")
@click.argument("reference")
@click.option("--title", required=True, help="Kept with the case; its event commits to it.")
@click.option("--authority", required=True, help="The authority the case belongs to.")
@as_option
@json_option
@click.pass_context
def case_open(
    ctx: click.Context, reference: str, title: str, authority: str, as_name: str, as_json: bool
) -> None:
    """Open a case; who opens it (an examiner or an authority) is its first lead."""
    with deployment(ctx) as dep:
        actor = acting_principal(dep, as_name).actor
        opened, _ = dep.cases.open(
            {"reference": reference, "title": title, "authority": authority}, actor
        )
        _shown(dep, opened.id, as_name, as_json)


@case.command("list")
@as_option
@json_option
@click.pass_context
def case_list(ctx: click.Context, as_name: str, as_json: bool) -> None:
    """The cases of the --as principal (every case, for an admin), by reference."""
    with deployment(ctx) as dep:
        actor = acting_principal(dep, as_name).actor
        after = None
        while True:
            found = dep.cases.list(actor, 200, after)
            for c in found:
                emit(as_json, c.as_json(), _line(c))
            if len(found) < 200:
                return
            after = found[-1].reference


@case.command("show")
@click.argument("case_name", metavar="CASE")
@as_option
@json_option
@click.pass_context
def case_show(ctx: click.Context, case_name: str, as_name: str, as_json: bool) -> None:
    """A case (by id or reference), its members and grants."""
    with deployment(ctx) as dep:
        _shown(dep, _case_id(dep, case_name), as_name, as_json)


@case.command("add-member")
@click.argument("case_name", metavar="CASE")
@click.argument("principal")
@click.option("--role", type=click.Choice(["lead", "member"]), default="member", show_default=True)
@as_option
@json_option
@click.pass_context
def case_add_member(
    ctx: click.Context, case_name: str, principal: str, role: str, as_name: str, as_json: bool
) -> None:
    """Make a principal a member of the case (a lead of the case or an admin does)."""
    with deployment(ctx) as dep:
        case_id = _case_id(dep, case_name)
        dep.cases.add_member(case_id, principal, role, acting_principal(dep, as_name).actor)
        _shown(dep, case_id, as_name, as_json)


@case.command("remove-member")
@click.argument("case_name", metavar="CASE")
@click.argument("principal")
@as_option
@json_option
@click.pass_context
def case_remove_member(
    ctx: click.Context, case_name: str, principal: str, as_name: str, as_json: bool
) -> None:
    """End a membership: the case's items and orders are closed to the principal at once."""
    with deployment(ctx) as dep:
        case_id = _case_id(dep, case_name)
        done = dep.cases.remove_member(case_id, principal, acting_principal(dep, as_name).actor)
        emit(
            as_json,
            {"case": case_id, "removed": principal, "ledger_index": done.index},
            f"{principal} removed from {case_name} (ledger index {done.index})",
        )


@case.command("grant")
@click.argument("case_name", metavar="CASE")
@click.argument("court")
@click.option("--proceeding", required=True, help="The proceeding the grant is for.")
@click.option(
    "--until",
    "ends_at",
    required=True,
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%d%z"]),
    help="When the grant ends (RFC 3339 with offset, e.g. 2027-06-30T00:00:00+00:00).",
)
@click.option("--exhibit", "exhibits", multiple=True, help="An item granted (evidence id); repeat.")
@as_option
@json_option
@click.pass_context
def case_grant(
    ctx: click.Context,
    case_name: str,
    court: str,
    proceeding: str,
    ends_at: datetime,
    exhibits: tuple[str, ...],
    as_name: str,
    as_json: bool,
) -> None:
    """Grant a court the case, or the exhibits named, for a proceeding until a time."""
    with deployment(ctx) as dep:
        case_id = _case_id(dep, case_name)
        values = {
            "court": court,
            "proceeding": proceeding,
            "ends_at": ends_at,
            "exhibits": list(exhibits),
        }
        granted = dep.cases.grant_court(case_id, values, acting_principal(dep, as_name).actor)
        emit(as_json, granted.as_json(), f"grant {granted.id}: {court} until {ends_at}")


@case.command("end-grant")
@click.argument("case_name", metavar="CASE")
@click.argument("grant_id", metavar="GRANT")
@as_option
@json_option
@click.pass_context
def case_end_grant(
    ctx: click.Context, case_name: str, grant_id: str, as_name: str, as_json: bool
) -> None:
    """End a court's grant now."""
    with deployment(ctx) as dep:
        case_id = _case_id(dep, case_name)
        dep.cases.end_grant(case_id, grant_id, acting_principal(dep, as_name).actor)
        _shown(dep, case_id, as_name, as_json)


@case.command("close")
@click.argument("case_name", metavar="CASE")
@as_option
@json_option
@click.pass_context
def case_close(ctx: click.Context, case_name: str, as_name: str, as_json: bool) -> None:
    """Close a case: it takes no new items or orders; what it holds stays."""
    with deployment(ctx) as dep:
        case_id = _case_id(dep, case_name)
        dep.cases.close(case_id, acting_principal(dep, as_name).actor)
        _shown(dep, case_id, as_name, as_json)
