"""Tests of the provider and order commands of ``custos`` (commands/orders.py): ``provider
add|list`` and ``orders sweep|list|show``, on the local home and against a real server over HTTP."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main
from custody.events import Actor, Event
from custody.order_document import PRESERVATION
from custody.providers import Provider
from storage.deployment import Deployment, open_deployment
from tests.conftest import FakeClock, Home, add_provider
from tests.factories import failed, in_case, json_lines, json_object, ok, order_document

PROVIDER_FIELDS = [
    "--jurisdiction",
    "IE",
    "--legal-representative",
    "MailCo Legal Ltd",
    "--contact",
    "lawful-requests@mailco.example",
]


@dataclass
class Cast:
    """The people around an order: an authority drafts, an approver serves, a provider's
    principal answers."""

    authority: Actor
    approver: Actor
    provider: Provider
    provider_principal: Actor


@pytest.fixture
def cast(home: Home) -> Cast:
    dep = home.deployment
    operator = dep.principals.get("operator").actor
    provider = add_provider(dep, "MailCo")
    cast = Cast(
        authority=dep.principals.add("ana", "authority", operator)[0].actor,
        approver=dep.principals.add("judge", "approver", operator)[0].actor,
        provider=provider,
        provider_principal=dep.principals.add("mailco", "provider", operator, provider.id)[0].actor,
    )
    for case in ("CASE-1", "C-1", "C-2"):
        in_case(dep, case, "ana", "judge")
    return cast


def draft(dep: Deployment, cast: Cast, provider: Provider | None = None, **changes: Any) -> str:
    document = order_document((provider or cast.provider).id, **changes)
    return dep.orders.draft(document, cast.authority).stored.id


def serve(dep: Deployment, cast: Cast, provider: Provider | None = None, **changes: Any) -> str:
    order_id = draft(dep, cast, provider, **changes)
    dep.orders.act(order_id, "submit", {}, cast.authority)
    dep.orders.act(order_id, "approve", {}, cast.approver)
    return order_id


def acknowledge(dep: Deployment, cast: Cast, order_id: str) -> None:
    principal, provider_id = cast.provider_principal, cast.provider.id
    dep.orders.act(order_id, "acknowledge", {}, principal, provider_id=provider_id)


@pytest.fixture
def past(home: Home) -> Iterator[Deployment]:
    """The same home opened on a clock 30 days back: orders served through it are past
    their 10-day deadline by the real clock the CLI reads."""
    clock = FakeClock()
    clock.now = datetime.now(UTC) - timedelta(days=30)
    dep = open_deployment(home.config, clock=clock)
    yield dep
    dep.close()


# -- provider ------------------------------------------------------------------------------------


def test_provider_add_prints_the_provider_with_its_id_and_records_it(
    runner: CliRunner, home: Home
) -> None:
    size = home.deployment.ledger.size()
    url = ["--notification-url", "https://mailco.example/custos"]

    added = json_object(
        runner.invoke(main, ["provider", "add", "MailCo", *PROVIDER_FIELDS, *url, "--json"])
    )

    assert added["id"].startswith("prv_")
    assert {k: added[k] for k in ("name", "jurisdiction", "legal_representative", "contact")} == {
        "name": "MailCo",
        "jurisdiction": "IE",
        "legal_representative": "MailCo Legal Ltd",
        "contact": "lawful-requests@mailco.example",
    }
    assert added["notification_url"] == "https://mailco.example/custos"
    assert home.deployment.providers.get(added["id"]).name == "MailCo"
    assert home.deployment.ledger.size() == size + 1
    event = Event.decode(home.deployment.ledger.entry(size))
    assert event.type == "provider.registered" and event.subject.id == added["id"]


def test_provider_add_without_json_prints_name_and_id(runner: CliRunner, home: Home) -> None:
    output = ok(runner.invoke(main, ["provider", "add", "MailCo", *PROVIDER_FIELDS])).stdout

    [provider] = home.deployment.providers.list()
    assert output.strip() == f"MailCo (IE) id {provider.id}"
    assert provider.notification_url is None


def test_provider_list_prints_every_provider(runner: CliRunner, home: Home) -> None:
    first = add_provider(home.deployment, "MailCo")
    second = add_provider(home.deployment, "PhoneCo", notification_url="https://phone.example/n")

    listed = json_lines(runner.invoke(main, ["provider", "list", "--json"]))
    text = ok(runner.invoke(main, ["provider", "list"])).stdout.splitlines()

    assert sorted(p["id"] for p in listed) == sorted([first.id, second.id])
    assert {p["name"]: p["notification_url"] for p in listed} == {
        "MailCo": None,
        "PhoneCo": "https://phone.example/n",
    }
    assert text[0].split() == ["NAME", "JURISDICTION", "ID", "NOTICES", "TO"]
    assert len(text) == 3
    assert any(second.id in line and "https://phone.example/n" in line for line in text)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--as", "ana"], "the authority role may not register providers"),
        (["--notification-url", "ftp://mailco.example/"], "notification_url"),
        (["--contact", ""], "contact"),
    ],
)
def test_a_refused_provider_add_fails_cleanly_and_records_nothing(
    runner: CliRunner, home: Home, extra: list[str], message: str
) -> None:
    operator = home.deployment.principals.get("operator").actor
    home.deployment.principals.add("ana", "authority", operator)
    size = home.deployment.ledger.size()

    output = failed(runner.invoke(main, ["provider", "add", "MailCo", *PROVIDER_FIELDS, *extra]))

    assert message in output
    assert home.deployment.providers.list() == []
    assert home.deployment.ledger.size() == size


def test_a_provider_add_with_several_fields_at_fault_names_each_on_its_line(
    runner: CliRunner, home: Home
) -> None:
    size = home.deployment.ledger.size()
    args = ["--jurisdiction", "IE", "--legal-representative", " ", "--contact", ""]

    output = failed(runner.invoke(main, ["provider", "add", "MailCo", *args]))

    assert output.splitlines() == [
        "Error: invalid fields",
        "  legal_representative: required, as non-empty text",
        "  contact: required, as non-empty text",
    ]
    assert home.deployment.ledger.size() == size


def test_a_second_provider_of_the_same_name_is_refused(runner: CliRunner, home: Home) -> None:
    ok(runner.invoke(main, ["provider", "add", "MailCo", *PROVIDER_FIELDS]))
    size = home.deployment.ledger.size()

    assert "exists already" in failed(
        runner.invoke(main, ["provider", "add", "MailCo", *PROVIDER_FIELDS])
    )
    assert len(home.deployment.providers.list()) == 1
    assert home.deployment.ledger.size() == size


def test_a_provider_principal_bound_to_the_new_provider_sees_its_served_orders(
    runner: CliRunner, home: Home, cast: Cast
) -> None:
    added = json_object(
        runner.invoke(main, ["provider", "add", "NewCo", *PROVIDER_FIELDS, "--json"])
    )

    bound = json_object(
        runner.invoke(
            main,
            [
                "principal",
                "add",
                "newco",
                "--role",
                "provider",
                "--provider",
                added["id"],
                "--json",
            ],
        )
    )

    assert bound["provider"] == added["id"] and bound["role"] == "provider"
    dep = home.deployment
    theirs = serve(dep, cast, dep.providers.get(added["id"]))
    serve(dep, cast)  # served on MailCo: not NewCo's to see
    newco = dep.principals.get("newco")
    seen = dep.orders.list_for_provider(newco.actor, newco.provider_id)
    assert [s.id for s in seen] == [theirs]
    assert dep.orders.get_for_provider(theirs, newco.actor, newco.provider_id).id == theirs


def test_a_provider_principal_for_an_unknown_provider_is_refused(
    runner: CliRunner, home: Home
) -> None:
    size = home.deployment.ledger.size()
    args = ["principal", "add", "ghost", "--role", "provider", "--provider", "prv_0000000000000000"]

    assert "no provider" in failed(runner.invoke(main, args))
    assert home.deployment.ledger.size() == size


# -- orders sweep ---------------------------------------------------------------------------------


def read(dep: Deployment, cast: Cast, order_id: str) -> None:
    """The provider reads the order: its receipt, from which its period runs."""
    dep.orders.get_for_provider(order_id, cast.provider_principal, cast.provider.id)


def test_sweep_ends_a_lapsed_hold_and_lists_late_orders_as_overdue_leaving_them_open(
    runner: CliRunner, home: Home, cast: Cast, past: Deployment
) -> None:
    """Late compliance: an order to produce past its deadline, acknowledged or not, stays
    open and is listed overdue; a preservation hold that ended is ``order.expired``."""
    held = serve(past, cast, kind=PRESERVATION, preservation_days=1, reference="PO-0")
    acknowledge(past, cast, held)
    unanswered = serve(past, cast, reference="PO-1")
    read(past, cast, unanswered)
    acknowledged = serve(past, cast, reference="PO-2")
    acknowledge(past, cast, acknowledged)
    answered = serve(past, cast, reference="PO-3")
    acknowledge(past, cast, answered)
    past.orders.act(answered, "no_data", {}, cast.provider_principal, provider_id=cast.provider.id)
    draft(past, cast, reference="PO-4")
    serve(past, cast, reference="PO-6")  # never received: no period runs
    serve(home.deployment, cast, reference="PO-5")  # served now
    size = home.deployment.ledger.size()

    swept = json_lines(runner.invoke(main, ["orders", "sweep", "--json"]))

    assert [(s["id"], s["sweep"], s["state"], s["reference"]) for s in swept] == [
        (held, "expired", "expired", "PO-0"),
        (unanswered, "overdue", "served", "PO-1"),
        (acknowledged, "overdue", "acknowledged", "PO-2"),
    ]
    assert all(s["provider"] == cast.provider.id and s["due"] for s in swept)
    assert swept[1]["overdue"] is True and swept[2]["overdue"] is True
    desk = home.deployment.orders
    assert desk.get(held, cast.authority).order.state == "expired"
    assert desk.get(unanswered, cast.authority).order.state == "served"
    assert home.deployment.ledger.size() == size + 1
    event = Event.decode(home.deployment.ledger.entry(size))
    assert event.type == "order.expired" and event.subject.id == held


def test_a_second_sweep_expires_nothing_more_and_still_lists_the_overdue(
    runner: CliRunner, home: Home, cast: Cast, past: Deployment
) -> None:
    unanswered = serve(past, cast, reference="PO-1")
    read(past, cast, unanswered)
    acknowledged = serve(past, cast, reference="PO-2")
    acknowledge(past, cast, acknowledged)
    ok(runner.invoke(main, ["orders", "sweep"]))
    size = home.deployment.ledger.size()

    text = ok(runner.invoke(main, ["orders", "sweep"])).stdout.splitlines()

    assert home.deployment.ledger.size() == size
    first, second = text
    assert first.split()[:5] == ["overdue", unanswered, "PO-1", cast.provider.id, "served"]
    assert second.split()[:5] == ["overdue", acknowledged, "PO-2", cast.provider.id, "acknowledged"]


def test_sweep_with_nothing_due_prints_nothing(runner: CliRunner, home: Home, cast: Cast) -> None:
    serve(home.deployment, cast)
    size = home.deployment.ledger.size()

    assert ok(runner.invoke(main, ["orders", "sweep", "--json"])).stdout == ""
    assert home.deployment.ledger.size() == size


@dataclass
class Listener:
    url: str
    received: list[bytes] = field(default_factory=list)


@pytest.fixture
def listener() -> Iterator[Listener]:
    """A provider's notification endpoint on 127.0.0.1 that keeps what is POSTed to it."""
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield Listener(f"http://127.0.0.1:{server.server_port}/custos", received)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def closed_port() -> int:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port: int = free.getsockname()[1]
    return port


def test_sweep_delivers_the_notices_due_to_providers_once(
    runner: CliRunner, home: Home, cast: Cast, listener: Listener
) -> None:
    dep = home.deployment
    listening = add_provider(dep, "HookCo", notification_url=listener.url)
    unreachable = add_provider(
        dep, "GoneCo", notification_url=f"http://127.0.0.1:{closed_port()}/custos"
    )
    delivered = serve(dep, cast, listening)
    retried = serve(dep, cast, unreachable)

    swept = json_lines(runner.invoke(main, ["orders", "sweep", "--json"]))

    assert swept == [{"sweep": "notices", "delivered": 1, "retried": 1, "failed": 0}]
    [note] = listener.received
    assert note.startswith(b"custos/notice/v1\n") and delivered.encode() in note
    [sent] = dep.orders.notices.for_order(delivered)
    assert sent.state == "delivered" and sent.attempts == 1
    [pending] = dep.orders.notices.for_order(retried)
    assert pending.state == "pending" and pending.attempts == 1 and pending.last_error
    # The failed notice is not due again until its retry time: a second sweep sends nothing.
    assert ok(runner.invoke(main, ["orders", "sweep"])).stdout == ""
    assert len(listener.received) == 1


# -- orders list and show -------------------------------------------------------------------------


@dataclass
class Docket:
    drafted: str  # MailCo, case C-1
    served: str  # PhoneCo, case C-2
    overdue: str  # MailCo, case C-2, acknowledged 30 days ago
    phoneco: Provider


@pytest.fixture
def docket(home: Home, cast: Cast, past: Deployment) -> Docket:
    phoneco = add_provider(home.deployment, "PhoneCo", notification_url="https://phone.example/n")
    drafted = draft(home.deployment, cast, reference="PO-1", case="C-1")
    served = serve(home.deployment, cast, phoneco, reference="PO-2", case="C-2")
    overdue = serve(past, cast, reference="PO-3", case="C-2")
    acknowledge(past, cast, overdue)
    return Docket(drafted, served, overdue, phoneco)


def listed(runner: CliRunner, *args: str) -> list[str]:
    orders = json_lines(runner.invoke(main, ["orders", "list", "--as", "ana", "--json", *args]))
    return [o["id"] for o in orders]


def test_orders_list_filters_by_status_provider_case_and_overdue(
    runner: CliRunner, cast: Cast, docket: Docket
) -> None:
    d = docket

    assert listed(runner) == [d.drafted, d.served, d.overdue]
    assert listed(runner, "--status", "served") == [d.served]
    assert listed(runner, "--status", "draft") == [d.drafted]
    assert listed(runner, "--provider", cast.provider.id) == [d.drafted, d.overdue]
    assert listed(runner, "--provider", d.phoneco.id) == [d.served]
    assert listed(runner, "--case", "C-2") == [d.served, d.overdue]
    assert listed(runner, "--overdue") == [d.overdue]
    assert listed(runner, "--overdue", "--status", "served") == []
    assert listed(runner, "--case", "C-1", "--provider", d.phoneco.id) == []


def test_orders_list_prints_one_line_per_order_marking_the_overdue(
    runner: CliRunner, docket: Docket
) -> None:
    header, *rows = ok(runner.invoke(main, ["orders", "list", "--as", "judge"])).stdout.splitlines()

    assert header.split()[0] == "ID" and header.split()[-1] == "OVERDUE"
    assert [line.split()[0] for line in rows] == [docket.drafted, docket.served, docket.overdue]
    assert [line.split()[-1] for line in rows] == ["no", "no", "yes"]


def test_orders_list_items_carry_the_summary_of_each_order_without_its_document(
    runner: CliRunner, cast: Cast, docket: Docket
) -> None:
    [order] = json_lines(
        runner.invoke(main, ["orders", "list", "--as", "ana", "--json", "--overdue"])
    )

    assert order["reference"] == "PO-3" and order["case"] == "C-2"
    assert order["state"] == "acknowledged" and order["overdue"] is True
    assert order["drafted_by"] == cast.authority.id and order["approved_by"] == cast.approver.id
    # What ana, an authority, may do with an overdue order; the provider's acts are not hers.
    assert order["allowed_actions"] == [
        "withdraw",
        "seek_enforcement",
        "close",
        "record_user_information",
    ]
    assert order["provider"] == cast.provider.id
    assert "document" not in order  # the targets are read by showing the order


@pytest.mark.parametrize("who", ["operator", "mailco"])
def test_orders_list_and_show_refuse_a_principal_who_is_no_authority(
    runner: CliRunner, docket: Docket, who: str
) -> None:
    assert "may not" in failed(runner.invoke(main, ["orders", "list", "--as", who]))
    assert "may not" in failed(runner.invoke(main, ["orders", "show", docket.served, "--as", who]))


def test_orders_show_prints_the_order_with_its_timeline_and_notices(
    runner: CliRunner, cast: Cast, docket: Docket
) -> None:
    shown = json_object(
        runner.invoke(main, ["orders", "show", docket.served, "--as", "judge", "--json"])
    )

    assert shown["id"] == docket.served and shown["state"] == "served"
    assert shown["provider"] == docket.phoneco.id
    assert (shown["received"], shown["due"]) == (False, None)  # not yet received
    assert shown["approved_by"] == cast.approver.id
    assert [e["type"] for e in shown["timeline"]] == [
        "order.drafted",
        "order.submitted",
        "order.served",
    ]
    assert shown["timeline"][-1]["state"] == "served"
    [notice] = shown["notices"]
    assert notice["event"] == "order.served" and notice["url"] == "https://phone.example/n"
    assert shown["responses"] == []
    text = ok(runner.invoke(main, ["orders", "show", docket.served, "--as", "judge"])).stdout
    assert text.startswith(f"{shown['reference']}: production order, served\n")
    assert "received      not yet" in text and "due           -" in text
    assert "Order served on the provider [order.served]" in text
    assert "None" not in text and "{" not in text


def test_orders_show_of_an_unknown_order_fails_cleanly(runner: CliRunner, cast: Cast) -> None:
    for unknown in ("ord_0000000000000000", "not-an-order"):
        assert "no order" in failed(runner.invoke(main, ["orders", "show", unknown, "--as", "ana"]))


# -- against a server over HTTP ------------------------------------------------------------------


@pytest.fixture
def authority_token(home: Home) -> str:
    operator = home.deployment.principals.get("operator")
    token = home.deployment.principals.add("avery", "authority", operator.actor)[1]
    for case in ("CASE-1", "C-1", "C-2"):
        in_case(home.deployment, case, "avery")
    return token


def test_orders_list_and_show_against_a_server_print_what_the_local_home_prints(
    runner: CliRunner, docket: Docket, server_url: str, authority_token: str
) -> None:
    remote = ["--server", server_url, "--token", authority_token, "--json"]
    local = ["--as", "ana", "--json"]

    for filters in ([], ["--case", "C-2"], ["--overdue"], ["--status", "draft"]):
        there = json_lines(runner.invoke(main, ["orders", "list", *filters, *remote]))
        here = json_lines(runner.invoke(main, ["orders", "list", *filters, *local]))
        assert [o["id"] for o in there] == [o["id"] for o in here]
        assert there == here

    there_one = json_object(runner.invoke(main, ["orders", "show", docket.served, *remote]))
    here_one = json_object(runner.invoke(main, ["orders", "show", docket.served, *local]))
    assert there_one == here_one


def test_orders_against_a_server_refuse_cleanly(
    runner: CliRunner, docket: Docket, server_url: str, authority_token: str
) -> None:
    remote = ["--server", server_url, "--token", authority_token]

    assert "404" in failed(runner.invoke(main, ["orders", "show", "ord_0000000000000000", *remote]))
    assert "401" in failed(
        runner.invoke(main, ["orders", "list", "--server", server_url, "--token", "nope"])
    )
    assert "--token" in failed(runner.invoke(main, ["orders", "list", "--server", server_url]))


def test_orders_list_against_a_server_follows_the_cursor_past_one_page(
    runner: CliRunner, home: Home, cast: Cast, server_url: str, authority_token: str
) -> None:
    drafted = [draft(home.deployment, cast, reference=f"PO-{n}") for n in range(51)]

    there = json_lines(
        runner.invoke(
            main, ["orders", "list", "--server", server_url, "--token", authority_token, "--json"]
        )
    )

    assert [o["id"] for o in there] == drafted  # the server's pages hold 50
