"""Pages benchmark: the server time of every page of the desks on a large deployment.

Run from the repository root::

    .venv/bin/python bench/bench_pages.py                      # full run, SQLite
    .venv/bin/python bench/bench_pages.py --database-url postgresql+psycopg://...
    .venv/bin/python bench/bench_pages.py --orders 500 --items 5000 --requests 50   # smoke

It makes a new home and seeds it through the domain, as the API would: one provider with
``--orders`` (10,000) served production orders (a fifth acknowledged, a few answered with a
response file), drafted on a clock that starts 30 days ago so the older ones are overdue, and
``--items`` (100,000) physical items in 100 cases. Then, in this process, the app answers
``--requests`` (300) requests of each page through Flask's test client, signed in as the
provider, the court, an examiner, the authority or the admin; each request's time is the
app's time (no network), and every SQL statement it runs is counted. A page is "paged, with no
query per row" when its statement count does not depend on how many rows it shows; the table
gives the most statements any request of the page ran.

A benchmark reports; it does not assert: the exit status is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import io
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT, ROOT / "tools"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from bench_load import fresh_schema  # noqa: E402
from demo import MovingClock, order_document  # noqa: E402
from report import (  # noqa: E402
    Results,
    Row,
    add_docs_options,
    code_version,
    docs_target,
    load,
    markdown_table,
    publish,
    say,
)
from sqlalchemy import event  # noqa: E402

from bench.cases import open_case  # noqa: E402
from service import create_app  # noqa: E402
from service.evidence import load_intake  # noqa: E402
from storage.config import load_config, with_overrides  # noqa: E402
from storage.deployment import Deployment, initialise, open_deployment  # noqa: E402

GOAL_MS = 50.0
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def seed(deployment: Deployment, clock: MovingClock, orders: int, items: int) -> dict[str, Any]:
    operator = deployment.principals.get("operator").actor
    provider = deployment.providers.add(
        {
            "name": "Bench Mail",
            "jurisdiction": "IE",
            "legal_representative": "Bench Mail Legal",
            "contact": "lawful@bench.example",
        },
        operator,
    )
    people = deployment.principals
    authority_principal, authority_token = people.add("authority", "authority", operator)
    authority = authority_principal.actor
    approver = people.add("approver", "approver", operator)[0].actor
    examiner_principal, examiner_token = people.add("examiner", "examiner", operator)
    examiner = examiner_principal.actor
    isp, isp_token = people.add("isp", "provider", operator, provider.id)
    _, court_token = people.add("court", "court", operator)
    for n in range(100):  # the orders' and items' cases, CASE-000 to CASE-099
        open_case(deployment, f"CASE-{n:03d}", authority, "approver", "examiner", court="court")
    desk = deployment.orders
    step = timedelta(days=30) / max(orders, 1)
    order_ids: list[str] = []
    responses: list[str] = []
    started = time.perf_counter()
    for n in range(orders):
        document = order_document(provider.id, f"PO-B-{n:05d}", case=f"CASE-{n % 100:03d}")
        order_id = desk.draft(document, authority).stored.id
        desk.act(order_id, "submit", {}, authority)
        desk.act(order_id, "approve", {}, approver)
        if n % 5 == 0:
            desk.act(order_id, "acknowledge", {}, isp.actor, provider_id=provider.id)
            if n % 500 == 0:
                session = desk.open_response(
                    order_id, {"description": "records"}, isp.actor, provider.id
                )
                desk.receive_response(
                    order_id, session.id, io.BytesIO(b"records\n" * 100), isp.actor, provider.id
                )
                responses.append(session.id)
        order_ids.append(order_id)
        clock.advance(seconds=step.total_seconds())
        if (n + 1) % 1000 == 0:
            say(f"  {n + 1:,} orders ({(n + 1) / (time.perf_counter() - started):,.0f}/s)")
    started = time.perf_counter()
    item_ids: list[str] = []
    for n in range(items):
        metadata = load_intake(
            {
                "kind": "physical",
                "case": f"CASE-{n % 100:03d}",
                "exhibit": f"EX-{n:06d}",
                "description": "a seized phone",
                "seizure": {
                    "at": "2026-11-27T09:30:00Z",
                    "location": "a flat",
                    "by": "an officer",
                    "authority": "a warrant",
                    "packaging": "a sealed bag",
                },
            }
        )
        item_ids.append(deployment.intake.register_physical(metadata, examiner).event.subject.id)
        if (n + 1) % 10000 == 0:
            say(f"  {n + 1:,} items ({(n + 1) / (time.perf_counter() - started):,.0f}/s)")
    clock.catch_up()
    return {
        "orders": order_ids,
        "responses": responses,
        "items": item_ids,
        "isp": isp_token,
        "court": court_token,
        "examiner": examiner_token,
        "authority": authority_token,
    }


class StatementCounter:
    """Counts the SQL statements the engine runs."""

    def __init__(self, deployment: Deployment) -> None:
        self.count = 0
        event.listen(deployment.engine, "before_cursor_execute", self._one)

    def _one(self, *args: Any) -> None:
        self.count += 1


def signed_in(app: Any, token: str) -> Any:
    client = app.test_client()
    page = client.get("/sign-in").get_data(as_text=True)
    csrf = CSRF.search(page)
    assert csrf is not None
    response = client.post("/sign-in", data={"csrf_token": csrf.group(1), "token": token})
    assert response.status_code == 303, response.status_code
    return client


def measure(
    client: Any, counter: StatementCounter, paths: Callable[[int], str], requests: int
) -> tuple[list[float], int]:
    times: list[float] = []
    most = 0
    for n in range(requests):
        path = paths(n)
        before = counter.count
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
        most = max(most, counter.count - before)
    return times, most


def p99(times: list[float]) -> float:
    return (
        statistics.quantiles(times, n=100, method="inclusive")[98] if len(times) > 1 else times[0]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--database-url", help="default: SQLite in the new home")
    add_docs_options(parser)
    args = parser.parse_args(argv)
    small = args.orders < 10_000 or args.items < 100_000
    version = code_version(["service", "custody", "storage"])
    results = Results()
    with tempfile.TemporaryDirectory(prefix="custos-bench-pages-") as tmp:
        home = Path(tmp) / "home"
        config = load_config(home, environ={})
        drop_schema = None
        if args.database_url:  # a schema of its own, dropped at the end
            url, drop_schema = fresh_schema(args.database_url)
            config = with_overrides(config, database_url=url)
        initialised = initialise(config, origin="bench.custos.invalid/pages")
        initialised.deployment.close()
        assert initialised.operator_token is not None
        config = with_overrides(load_config(home, environ={}), database_url=config.database_url)
        clock = MovingClock(datetime.now(UTC) - timedelta(days=31))
        deployment = open_deployment(config, clock=clock)
        backend = deployment.engine.dialect.name
        say(f"seeding {args.orders:,} orders and {args.items:,} items on {backend}")
        seeded = seed(deployment, clock, args.orders, args.items)
        if backend == "postgresql":
            # What autovacuum does after a bulk load: without statistics the planner takes
            # the 10,000 fresh orders for a handful and picks a plan for a handful.
            with deployment.engine.begin() as connection:  # committed: ANALYZE is transactional
                connection.exec_driver_sql("ANALYZE")
        counter = StatementCounter(deployment)
        app = create_app({"TESTING": True}, deployment=deployment)
        provider = signed_in(app, seeded["isp"])
        court = signed_in(app, seeded["court"])
        admin = signed_in(app, initialised.operator_token)
        examiner = signed_in(app, seeded["examiner"])
        authority = signed_in(app, seeded["authority"])
        rng = random.Random(17)
        orders, items, responses = seeded["orders"], seeded["items"], seeded["responses"]
        for order_id in orders[: args.requests]:  # each order's first read is a write: once
            provider.get(f"/provider/orders/{order_id}")
        deep_orders = _order_cursor(deployment, orders[-min(40, len(orders))])
        pages: list[tuple[str, Any, Callable[[int], str], int]] = [
            ("provider inbox, first page", provider, lambda n: "/provider/orders", args.requests),
            (
                "provider inbox, acknowledged",
                provider,
                lambda n: "/provider/orders?state=acknowledged",
                args.requests,
            ),
            (
                "provider inbox, overdue",
                provider,
                lambda n: "/provider/orders?overdue=1",
                args.requests,
            ),
            (
                "provider inbox, a late page",
                provider,
                lambda n: "/provider/orders?cursor=" + deep_orders,
                args.requests,
            ),
            (
                "provider order page",
                provider,
                lambda n: f"/provider/orders/{orders[n % args.requests]}",
                args.requests,
            ),
            (
                "provider receipt page",
                provider,
                lambda n: f"/provider/receipts/{responses[n % len(responses)]}",
                args.requests,
            ),
            ("court items, first page", court, lambda n: "/court/items", args.requests),
            ("court items, one case", court, lambda n: "/court/items?case=CASE-042", args.requests),
            (
                "court items, a late page",
                court,
                lambda n: (
                    "/court/items?cursor=" + _encode_index(deployment, items[-min(60, len(items))])
                ),
                args.requests,
            ),
            (
                "court item page",
                court,
                lambda n: f"/court/items/{items[rng.randrange(len(items))]}",
                args.requests,
            ),
            (
                "court custody report page",
                court,
                lambda n: f"/court/items/{items[rng.randrange(len(items))]}/report",
                max(20, args.requests // 10),
            ),
            ("examiner case list", examiner, lambda n: "/examiner/cases", args.requests),
            (
                "examiner search by exhibit",
                examiner,
                lambda n: f"/examiner/cases?q=EX-{rng.randrange(len(items)):06d}",
                args.requests,
            ),
            (
                "examiner item page",
                examiner,
                lambda n: f"/examiner/items/{items[rng.randrange(len(items))]}",
                args.requests,
            ),
            ("verify offline page", provider, lambda n: "/verify", args.requests),
            ("admin principals page", admin, lambda n: "/admin/principals", args.requests),
            ("admin providers page", admin, lambda n: "/admin/providers", args.requests),
            *authority_pages(authority, orders, args.requests),
        ]
        for name, client, paths, requests in pages:
            client.get(paths(0))  # warm
            times, statements = measure(client, counter, paths, requests)
            figure = (
                f"p50 {statistics.median(times):.1f} ms, p99 {p99(times):.1f} ms, "
                f"{statements} SQL statements at most ({requests} requests)"
            )
            results.add(
                Row(name, figure, goal=f"p99 < {GOAL_MS:.0f} ms", passed=p99(times) < GOAL_MS)
            )
        deployment.close()
        if drop_schema is not None:
            drop_schema()
    results.notes.append(
        f"{backend}; {args.orders:,} orders, {args.items:,} items; {version}; load {load()}"
    )
    marks = (f"<!-- bench_pages:{backend}:begin -->", f"<!-- bench_pages:{backend}:end -->")
    publish(
        results,
        docs_target(args, small),
        "bench/bench_pages.py",
        argv if argv is not None else sys.argv[1:],
        lambda command: "\n".join(
            [
                marks[0],
                f"## Pages ({backend})",
                "",
                f"`{command}`",
                "",
                *markdown_table(results),
                marks[1],
                "",
            ]
        ),
        marks,
    )
    return 0


def authority_pages(
    authority: Any, orders: list[str], requests: int
) -> list[tuple[str, Any, Callable[[int], str], int]]:
    """The authority's desk: its board (six sections, each a filtered list), every order
    paged, the approvals inbox, the drafting form (empty, and from an earlier order) and an
    order's page with its timeline."""
    return [
        ("authority board", authority, lambda n: "/authority/orders", requests),
        ("authority orders, all", authority, lambda n: "/authority/orders/list/all", requests),
        ("authority approvals", authority, lambda n: "/authority/approvals", requests),
        ("authority drafting form", authority, lambda n: "/authority/orders/new", requests),
        (
            "authority drafting form from an earlier order",
            authority,
            lambda n: f"/authority/orders/new?from={orders[n % requests]}",
            requests,
        ),
        (
            "authority order page",
            authority,
            lambda n: f"/authority/orders/{orders[n % requests]}",
            requests,
        ),
    ]


def _order_cursor(deployment: Deployment, order_id: str) -> str:
    from service.request_input import encode_cursor

    stored = deployment.orders.store.get(order_id)
    assert stored is not None
    return encode_cursor(stored.seq)


def _encode_index(deployment: Deployment, evidence_id: str) -> str:
    from service.request_input import encode_cursor

    record = deployment.evidence.get(evidence_id)
    assert record is not None
    return encode_cursor(record.ledger_index)


if __name__ == "__main__":
    sys.exit(main())
