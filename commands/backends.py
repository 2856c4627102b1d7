"""The two backends of the evidence and order commands: the local home, acting as a principal,
and a server's API over HTTP. Both return the JSON shapes the API returns, so ``custos``
prints the same whichever it talks to.

The local backend checks what it is given with the API's own schemas (``service.evidence``,
``service.orders``); they bring Flask, so each is imported by the call that needs it, and
listing or showing evidence starts without them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from commands.client import CustosClient
from commands.sources import StableFile
from custody.digests import DigestPipeline, check_expected, http_digest, parse_http_digest
from custody.errors import CustosError
from custody.events import Actor, indexed_event_json
from custody.principals import name_list
from storage.deployment import Deployment

Progress = Callable[[int], object]


class Evidence(Protocol):
    """What the evidence commands need; ``LocalEvidence`` and ``RemoteEvidence`` give it."""

    def ingest(
        self, path: Path, metadata: dict[str, Any], expected: dict[str, str], progress: Progress
    ) -> dict[str, Any]: ...

    def register(self, metadata: dict[str, Any]) -> dict[str, Any]: ...

    def list(self, case: str | None, exhibit: str | None) -> Iterator[dict[str, Any]]: ...

    def show(self, evidence_id: str) -> dict[str, Any]: ...

    def custody(self, evidence_id: str) -> dict[str, Any]: ...

    def act(self, evidence_id: str, act: str, data: dict[str, Any]) -> dict[str, Any]: ...

    def download(
        self, evidence_id: str, purpose: str, out: BinaryIO, progress: Progress
    ) -> dict[str, Any]: ...


class LocalEvidence:
    """Evidence commands acting directly on the local home, as the ``--as`` principal."""

    def __init__(self, dep: Deployment, actor: Actor) -> None:
        self.dep = dep
        self.actor = actor

    def ingest(
        self, path: Path, metadata: dict[str, Any], expected: dict[str, str], progress: Progress
    ) -> dict[str, Any]:
        from service.evidence import load_intake

        session = self.dep.intake.open_session(load_intake(metadata), self.actor)
        with StableFile(path) as source:
            done = self.dep.intake.receive(
                session.id,
                source,
                self.actor,
                declared=expected,
                content_length=source.size,
                progress=progress,
            )
        receipt = json.loads(done.receipt.to_json())
        return {**done.record.as_json(), "ledger_index": done.ledger_index, "receipt": receipt}

    def register(self, metadata: dict[str, Any]) -> dict[str, Any]:
        from service.evidence import load_intake

        appended = self.dep.intake.register_physical(load_intake(metadata), self.actor)
        record = self.dep.handling.get(appended.event.subject.id, self.actor)
        return {**record.as_json(), "ledger_index": appended.index}

    def list(self, case: str | None, exhibit: str | None) -> Iterator[dict[str, Any]]:
        after = None
        while True:
            page = self.dep.handling.list(self.actor, case, exhibit, 200, after)
            yield from (r.as_json() for r in page)
            if len(page) < 200:
                return
            after = page[-1].ledger_index

    def show(self, evidence_id: str) -> dict[str, Any]:
        return self.dep.handling.get(evidence_id, self.actor).as_json()

    def custody(self, evidence_id: str) -> dict[str, Any]:
        record = self.dep.handling.get(evidence_id, self.actor)
        entries = self.dep.ledger.subject_entries(f"evidence:{record.id}")
        events = [indexed_event_json(e.index, e.leaf) for e in entries]
        names = self.dep.principals.shown_names(e["actor"]["id"] for e in events)
        return {"id": record.id, "events": events, "names": name_list(names)}

    def act(self, evidence_id: str, act: str, data: dict[str, Any]) -> dict[str, Any]:
        done = self.dep.handling.record_act(evidence_id, act, data, self.actor)
        return {
            **done.record.as_json(),
            "event": indexed_event_json(done.event.index, done.event.leaf),
        }

    def download(
        self, evidence_id: str, purpose: str, out: BinaryIO, progress: Progress
    ) -> dict[str, Any]:
        record, access, chunks = self.dep.handling.read_content(evidence_id, self.actor, purpose)
        for chunk in chunks:
            out.write(chunk)
            progress(len(chunk))
        return {"id": record.id, "digests": dict(record.digests), "access_index": access.index}


class RemoteEvidence:
    """Evidence commands against ``--server`` with ``--token``."""

    def __init__(self, client: CustosClient) -> None:
        self.client = client

    def ingest(
        self, path: Path, metadata: dict[str, Any], expected: dict[str, str], progress: Progress
    ) -> dict[str, Any]:
        header = http_digest(expected)
        if expected and len(header.split(",")) != len(expected):
            raise CustosError("over HTTP, --expect takes sha256, sha512, sha1 and md5")
        session = self.client.json("POST", "/v1/evidence", payload=metadata)
        with StableFile(path) as source:
            result: dict[str, Any] = self.client.upload(
                session["upload"],
                source,
                source.size,
                {"Repr-Digest": header} if header else {},
                progress,
            )
        return result

    def register(self, metadata: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.client.json("POST", "/v1/evidence", payload=metadata)
        return result

    def list(self, case: str | None, exhibit: str | None) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self.client.json(
                "GET", "/v1/evidence", {"case": case, "exhibit": exhibit, "cursor": cursor}
            )
            yield from page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def show(self, evidence_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.client.json("GET", f"/v1/evidence/{evidence_id}")
        return result

    def custody(self, evidence_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.client.json("GET", f"/v1/evidence/{evidence_id}/custody")
        return result

    def act(self, evidence_id: str, act: str, data: dict[str, Any]) -> dict[str, Any]:
        path = f"/v1/evidence/{evidence_id}/events"
        result: dict[str, Any] = self.client.json("POST", path, payload={"type": act, **data})
        return result

    def download(
        self, evidence_id: str, purpose: str, out: BinaryIO, progress: Progress
    ) -> dict[str, Any]:
        pipeline = DigestPipeline(["sha256"])

        def sink(chunk: bytes) -> None:
            pipeline.update(chunk)
            out.write(chunk)

        headers = self.client.download(
            f"/v1/evidence/{evidence_id}/content", {"purpose": purpose}, sink, progress
        )
        declared = parse_http_digest(headers.get("Repr-Digest", ""))
        check_expected(pipeline.hexdigests(), {"sha256": declared["sha256"]})
        return {
            "id": evidence_id,
            "digests": pipeline.hexdigests(),
            "access_index": int(headers.get("Custos-Access-Index", "-1")),
        }


class Orders(Protocol):
    """What the order commands need; ``LocalOrders`` and ``RemoteOrders`` give it."""

    def list(
        self, status: str | None, provider: str | None, case: str | None, overdue: bool
    ) -> Iterator[dict[str, Any]]: ...

    def show(self, order_id: str) -> dict[str, Any]: ...


class LocalOrders:
    """Order commands acting directly on the local home, as the ``--as`` principal."""

    def __init__(self, dep: Deployment, actor: Actor) -> None:
        self.dep = dep
        self.actor = actor

    def list(
        self, status: str | None, provider: str | None, case: str | None, overdue: bool
    ) -> Iterator[dict[str, Any]]:
        desk = self.dep.orders
        after = None
        while True:
            page = desk.list(
                self.actor,
                state=status,
                provider=provider,
                case=case,
                overdue_only=overdue,
                limit=200,
                after=after,
            )
            yield from (desk.summary(stored, by=self.actor) for stored in page)
            if len(page) < 200:
                return
            after = page[-1].seq

    def show(self, order_id: str) -> dict[str, Any]:
        desk = self.dep.orders
        from service.orders import order_detail

        stored = desk.get(order_id, self.actor)
        return order_detail(desk, stored, self.actor, self.dep.principals.shown_names)


class RemoteOrders:
    """Order commands against ``--server`` with ``--token``."""

    def __init__(self, client: CustosClient) -> None:
        self.client = client

    def list(
        self, status: str | None, provider: str | None, case: str | None, overdue: bool
    ) -> Iterator[dict[str, Any]]:
        query: dict[str, Any] = {
            "status": status,
            "provider": provider,
            "case": case,
            "overdue": "true" if overdue else None,
        }
        while True:
            page = self.client.json("GET", "/v1/orders", query)
            yield from page["items"]
            if page["next_cursor"] is None:
                return
            query["cursor"] = page["next_cursor"]

    def show(self, order_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.client.json("GET", f"/v1/orders/{order_id}")
        return result
