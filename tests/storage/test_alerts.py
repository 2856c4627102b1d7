"""E-mail alerts end to end: order events write them to the outbox, the SMTP sender hands them
to a real SMTP server on 127.0.0.1 (aiosmtpd), and the messages it received are checked.

Each test runs on SQLite and on PostgreSQL, on a FakeClock.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from custody.alerts import DUE_SOON
from custody.events import Actor
from custody.outbox import DELIVERED, PENDING, DeliveryReport
from storage.alerts import alert_delivery
from storage.config import Config, ConfigError, load_config
from storage.deployment import Deployment, initialise, open_deployment
from tests.conftest import FakeClock, add_provider, make_config
from tests.factories import EMAIL, in_case, order_document

CONTACT = "lawful-requests@isp.example"


@dataclass
class MailServer:
    """The messages a real SMTP server received; ``refuse`` makes it refuse that many."""

    port: int = 0
    refuse: int = 0
    received: list[Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.refuse > 0:
                self.refuse -= 1
                return "451 4.3.0 try again later"
            message = message_from_bytes(envelope.original_content)
            message["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
            self.received.append(message)
        return "250 OK"

    def to(self) -> list[str]:
        return sorted(m["X-Envelope-To"] for m in self.received)


def text(message: Message) -> str:
    """The message's body as the recipient reads it (transfer encoding undone)."""
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode("utf-8")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def mail() -> Iterator[MailServer]:
    server = MailServer(port=_free_port())
    controller = Controller(server, hostname="127.0.0.1", port=server.port)
    controller.start()
    yield server
    controller.stop()


@dataclass
class Desk:
    deployment: Deployment
    author: Actor
    judge: Actor
    isp: Actor
    provider_id: str

    def serve(self) -> str:
        desk = self.deployment.orders
        order_id = desk.draft(order_document(self.provider_id), self.author).stored.id
        desk.act(order_id, "submit", {}, self.author)
        desk.act(order_id, "approve", {}, self.judge)
        return order_id

    def provider_acts(self, order_id: str, action: str) -> None:
        self.deployment.orders.act(order_id, action, {}, self.isp, provider_id=self.provider_id)

    def deliver(self) -> DeliveryReport:
        return alert_delivery(self.deployment).deliver_due()


def alerting(config: Config, mail: MailServer) -> Config:
    return make_config(
        config.home.parent,
        config.database_url,
        smtp_host="127.0.0.1",
        smtp_port=mail.port,
        smtp_security="none",
        smtp_from="custos@agency.example",
        public_url="https://custos.agency.example",
        alert_due_within=86400.0,
    )


def open_desk(config: Config, clock: FakeClock) -> tuple[Deployment, Desk]:
    initialise(config).deployment.close()
    deployment = open_deployment(config, clock=clock)
    principals = deployment.principals
    operator = principals.get("operator").actor
    provider = add_provider(deployment, "Own ISP", contact=CONTACT, time_zone="Europe/Lisbon")
    author, _ = principals.add("author", "authority", operator, email="author@agency.example")
    judge, _ = principals.add("judge", "approver", operator, email="judge@court.example")
    in_case(deployment, "CASE-1", "author", "judge")
    isp, _ = principals.add(
        "isp-officer", "provider", operator, provider.id, email="officer@isp.example"
    )
    principals.add("isp-quiet", "provider", operator, provider.id)
    return deployment, Desk(deployment, author.actor, judge.actor, isp.actor, provider.id)


@pytest.fixture
def desk(tmp_path: Path, database_url: str, clock: FakeClock, mail: MailServer) -> Iterator[Desk]:
    config = alerting(make_config(tmp_path, database_url), mail)
    deployment, parties = open_desk(config, clock)
    yield parties
    deployment.close()


def test_an_order_served_is_mailed_to_the_provider_s_contact_and_its_people(
    desk: Desk, mail: MailServer
) -> None:
    order_id = desk.serve()

    assert mail.received == []  # written to the outbox; serving sent nothing
    assert desk.deliver() == DeliveryReport(delivered=2)

    assert mail.to() == [CONTACT, "officer@isp.example"]
    for message in mail.received:
        body = text(message)
        assert message["From"] == "custos@agency.example"
        assert "Order served" in message["Subject"] and order_id in message["Subject"]
        assert f"https://custos.agency.example/provider/orders/{order_id}" in body
        # The order's content (its targets) never goes by e-mail.
        assert EMAIL not in body and EMAIL not in message["Subject"]
    alerts = desk.deployment.orders.alerts
    assert alerts is not None
    assert {a.state for a in alerts.store.for_order(order_id)} == {DELIVERED}


def test_the_provider_s_answers_are_mailed_to_the_order_s_authority(
    desk: Desk, mail: MailServer
) -> None:
    order_id = desk.serve()
    desk.deliver()
    mail.received.clear()

    desk.provider_acts(order_id, "acknowledge")
    desk.deliver()

    assert mail.to() == ["author@agency.example", "judge@court.example"]
    assert all("Order acknowledged" in m["Subject"] for m in mail.received)
    # The deadline, which the acknowledgement started, in the provider's zone and in UTC.
    body = text(mail.received[0])
    assert "(Europe/Lisbon)" in body and " UTC" in body


def test_a_revoked_principal_gets_no_alerts(desk: Desk, mail: MailServer) -> None:
    operator = desk.deployment.principals.get("operator").actor
    desk.deployment.principals.revoke("isp-officer", operator)

    desk.serve()
    desk.deliver()

    assert mail.to() == [CONTACT]


def test_an_order_due_soon_is_mailed_once_per_deadline(
    desk: Desk, mail: MailServer, clock: FakeClock
) -> None:
    order_id = desk.serve()
    desk.provider_acts(order_id, "acknowledge")  # its receipt: the deadline runs
    orders = desk.deployment.orders
    due = orders.get(order_id, desk.author).order.clock.due  # type: ignore[union-attr]
    assert due is not None
    desk.deliver()
    mail.received.clear()

    assert orders.queue_due_alerts() == 0  # not yet within a day of the deadline
    clock.now = due
    clock.advance(-3 * 3600)
    written = orders.queue_due_alerts()
    again = orders.queue_due_alerts()
    desk.deliver()

    assert (written, again) == (4, 0)
    assert mail.to() == sorted(
        [CONTACT, "officer@isp.example", "author@agency.example", "judge@court.example"]
    )
    assert all("Deadline near" in m["Subject"] for m in mail.received)
    alerts = orders.alerts
    assert alerts is not None
    assert sum(a.kind == DUE_SOON for a in alerts.store.for_order(order_id)) == 4


def test_a_refused_alert_is_retried_later_and_the_request_did_not_wait(
    desk: Desk, mail: MailServer, clock: FakeClock
) -> None:
    mail.refuse = 2
    order_id = desk.serve()  # succeeds although the mail server refuses

    first = desk.deliver()
    alerts = desk.deployment.orders.alerts
    assert alerts is not None
    pending = alerts.store.for_order(order_id)
    clock.advance(3600)
    second = desk.deliver()

    assert first == DeliveryReport(retried=2)
    assert {(a.state, a.attempts) for a in pending} == {(PENDING, 1)}
    assert all(a.last_error and a.last_error.startswith("not delivered at") for a in pending)
    assert second == DeliveryReport(delivered=2)
    assert mail.to() == [CONTACT, "officer@isp.example"]


def test_alerts_are_off_unless_an_smtp_server_is_configured(
    tmp_path: Path, database_url: str, clock: FakeClock
) -> None:
    deployment, parties = open_desk(make_config(tmp_path, database_url), clock)
    try:
        parties.serve()
        assert deployment.orders.alerts is None
        assert deployment.orders.queue_due_alerts() == 0
    finally:
        deployment.close()


def test_the_smtp_settings_come_from_the_environment_and_are_checked(tmp_path: Path) -> None:
    environ = {
        "CUSTOS_HOME": str(tmp_path),
        "CUSTOS_SMTP_HOST": "mail.agency.example",
        "CUSTOS_SMTP_PORT": "465",
        "CUSTOS_SMTP_SECURITY": "TLS",
        "CUSTOS_SMTP_FROM": "custos@agency.example",
        "CUSTOS_SMTP_USERNAME": "custos",
        "CUSTOS_SMTP_PASSWORD": "secret",
        "CUSTOS_ALERT_DUE_WITHIN": "7200",
    }
    config = load_config(environ=environ)

    assert (config.smtp_host, config.smtp_port, config.smtp_security) == (
        "mail.agency.example",
        465,
        "tls",
    )
    assert config.alerts_on and config.alert_due_within == 7200.0
    assert "secret" not in repr(config)
    for wrong in (
        {"CUSTOS_SMTP_FROM": "not an address"},
        {"CUSTOS_SMTP_SECURITY": "ssl3"},
        {"CUSTOS_SMTP_PASSWORD": ""},  # a username without its password
    ):
        with pytest.raises(ConfigError):
            load_config(environ={**environ, **wrong})
