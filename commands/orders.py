"""``custos provider`` and ``custos orders``: the addressees of orders, and the orders'
deadlines swept, listed and shown."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import click

from commands.common import (
    Group,
    acting_principal,
    api_backend,
    as_option,
    deployment,
    emit,
    emit_table,
    json_option,
    server_options,
)
from commands.render import order_text
from custody.orders import OrderState

if TYPE_CHECKING:
    # Loaded by the commands that use them: they bring Flask and the API's schemas.
    from commands.backends import Orders
    from custody.order_desk import StoredOrder


@click.group(cls=Group)
def provider() -> None:
    """Service providers: the addressees of orders."""


@provider.command("add")
@click.argument("name")
@click.option("--jurisdiction", required=True, help="Where the provider is established, e.g. IE.")
@click.option("--legal-representative", required=True)
@click.option("--contact", required=True, help="Where lawful requests go (e-mail, address).")
@click.option("--notification-url", help="http(s) URL that receives signed notices of orders.")
@click.option("--time-zone", default="UTC", show_default=True, help="IANA zone: Europe/Dublin")
@click.option("--country", help="ISO 3166-1 code whose public holidays move deadlines, e.g. IE.")
@click.option("--subdivision", help="ISO 3166-2 subdivision where holidays differ, e.g. BY.")
@click.option(
    "--language",
    "languages",
    multiple=True,
    help="A language it accepts EU orders in (BCP 47, e.g. en); repeat for more.",
)
@as_option
@json_option
@click.pass_context
def provider_add(
    ctx: click.Context,
    name: str,
    jurisdiction: str,
    legal_representative: str,
    contact: str,
    notification_url: str | None,
    time_zone: str,
    country: str | None,
    subdivision: str | None,
    languages: tuple[str, ...],
    as_name: str,
    as_json: bool,
) -> None:
    """Register a provider (recorded as provider.registered); prints its id."""
    fields = {
        "name": name,
        "jurisdiction": jurisdiction,
        "legal_representative": legal_representative,
        "contact": contact,
        "notification_url": notification_url,
        "time_zone": time_zone,
        "country": country,
        "subdivision": subdivision,
        "languages": list(languages),
    }
    with deployment(ctx) as dep:
        admin = acting_principal(dep, as_name)
        added = dep.providers.add(fields, admin.actor)
        emit(as_json, added.as_json(), f"{added.name} ({added.jurisdiction}) id {added.id}")


@provider.command("list")
@json_option
@click.pass_context
def provider_list(ctx: click.Context, as_json: bool) -> None:
    """List providers."""
    with deployment(ctx) as dep:
        emit_table(
            as_json,
            (p.as_json() for p in dep.providers.list()),
            ("NAME", "JURISDICTION", "ID", "NOTICES TO"),
            lambda p: (p["name"], p["jurisdiction"], p["id"], p.get("notification_url")),
            "no providers",
        )


# -- orders: sweep on the local home; list and show also against a server ----------------------


@click.group(cls=Group)
def orders() -> None:
    """Production and preservation orders: deadlines swept, listed, shown."""


def order_line(order: dict[str, Any]) -> str:
    due = order["due"] or "-"
    return f"{order['id']}  {order['reference']}  {order['provider']}  {order['state']}  due {due}"


@orders.command("sweep")
@json_option
@click.pass_context
def orders_sweep(ctx: click.Context, as_json: bool) -> None:
    """End the preservation holds that ran out, list the orders still owed past their
    deadline (they stay open), and deliver the notices due to providers; where alerts are on,
    write the alerts of deadlines near and send the alerts due."""
    from custody.outbox import OutboxDelivery
    from storage.alerts import alert_delivery
    from storage.notices import notice_delivery

    with deployment(ctx) as dep:
        report = dep.orders.sweep()
        found: list[tuple[str, StoredOrder]] = [
            *(("expired", acted.stored) for acted in report.expired),
            *(("overdue", stored) for stored in report.overdue),
        ]
        for outcome, stored in found:
            view = dep.orders.summary(stored)
            emit(as_json, {"sweep": outcome, **view}, f"{outcome:<8} {order_line(view)}")
        # One pass over the notices due: a failed one is not due again until its retry time.
        outboxes: list[tuple[str, OutboxDelivery[Any]]] = [("notices", notice_delivery(dep))]
        if dep.orders.alerts is not None:
            dep.orders.queue_due_alerts()
            outboxes.append(("alerts", alert_delivery(dep)))
        for name, delivery in outboxes:
            sent = delivery.deliver_due(limit=sys.maxsize)
            if sent.attempted:
                counts = ", ".join(f"{n} {what}" for what, n in sent.as_json().items())
                emit(as_json, {"sweep": name, **sent.as_json()}, f"{name:<8} {counts}")


def orders_backend(
    ctx: click.Context, server: str | None, token: str | None, as_name: str
) -> AbstractContextManager[Orders]:
    from commands.backends import LocalOrders, RemoteOrders

    return api_backend(ctx, server, token, as_name, LocalOrders, RemoteOrders)


@orders.command("list")
@click.option("--status", type=click.Choice([s.value for s in OrderState]))
@click.option("--provider", help="Provider id.")
@click.option("--case")
@click.option("--overdue", is_flag=True, help="Only orders still owed past their deadline.")
@server_options
@click.pass_context
def orders_list(
    ctx: click.Context,
    status: str | None,
    provider: str | None,
    case: str | None,
    overdue: bool,
    server: str | None,
    token: str | None,
    as_name: str,
    as_json: bool,
) -> None:
    """List orders, oldest first (authority or approver)."""
    with orders_backend(ctx, server, token, as_name) as backend:
        emit_table(
            as_json,
            backend.list(status, provider, case, overdue),
            ("ID", "REFERENCE", "KIND", "PROVIDER", "CASE", "STATE", "DUE", "OVERDUE"),
            lambda order: (
                order["id"],
                order["reference"],
                order["kind"],
                order["provider"],
                order["case"],
                order["state"].replace("_", " "),
                order["due"],
                order["overdue"],
            ),
            "no orders",
        )


@orders.command("show")
@click.argument("order_id")
@server_options
@click.pass_context
def orders_show(
    ctx: click.Context,
    order_id: str,
    server: str | None,
    token: str | None,
    as_name: str,
    as_json: bool,
) -> None:
    """One order: its document, state, deadline, allowed actions, timeline and notices."""
    with orders_backend(ctx, server, token, as_name) as backend:
        order = backend.show(order_id)
    emit(as_json, order, order_text(order))
