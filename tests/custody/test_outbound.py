"""Tests of custody.outbound: the outgoing-request policy, at registration and at connection."""

from __future__ import annotations

import ssl
from collections.abc import Sequence

import pytest

from custody.errors import FieldErrors
from custody.notices import NoticeDeliveryError
from custody.outbound import DestinationRefused, OutboundPolicy, outbound_allowance
from custody.providers import Providers
from storage.deployment import Deployment
from storage.notices import HttpNoticeSender
from tests.conftest import add_provider
from tests.storage.test_notices import Listener

PUBLIC = "93.184.215.14"


class Resolver:
    """Answers each host with the next of its answers (the last one again once used up)."""

    def __init__(self, **answers: list[list[str]]) -> None:
        self.answers = {host.replace("_", "."): list(a) for host, a in answers.items()}
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        answers = self.answers.get(host)
        if not answers:
            raise OSError("Name or service not known")
        return answers.pop(0) if len(answers) > 1 else answers[0]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/custos",
        "https://127.0.0.1/custos",
        "https://2130706433/custos",  # 127.0.0.1 as one number
        "https://0x7f.1/custos",
        "https://localhost/custos",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.7/custos",
        "https://192.168.1.1/custos",
        "https://[::1]/custos",
        "https://[::ffff:127.0.0.1]/custos",
        "https://[fe80::1]/custos",
        "https://0.0.0.0/custos",
        "https://224.0.0.1/custos",
    ],
)
def test_a_url_leading_to_an_address_that_is_not_public_is_refused(url: str) -> None:
    with pytest.raises(DestinationRefused, match="not public"):
        OutboundPolicy().check_registration(url, "notification_url")


def test_a_name_that_resolves_to_a_private_address_is_refused() -> None:
    policy = OutboundPolicy(resolve=Resolver(intranet_example=[["10.1.2.3"]]))
    with pytest.raises(DestinationRefused, match="not public"):
        policy.check_registration("https://intranet.example/hook", "notification_url")


@pytest.mark.parametrize(
    "url",
    [
        "https://user:secret@isp.example/custos",
        "https://token@isp.example/custos",
        "https://:secret@isp.example/custos",
    ],
)
def test_a_url_with_credentials_is_refused(url: str) -> None:
    with pytest.raises(DestinationRefused, match="credentials"):
        OutboundPolicy().check_registration(url, "notification_url")


def test_plain_http_to_a_public_address_is_refused() -> None:
    with pytest.raises(DestinationRefused, match="https"):
        OutboundPolicy().check_registration(f"http://{PUBLIC}/custos", "notification_url")


@pytest.mark.parametrize(
    "url", ["ftp://isp.example/x", "https:///x", "https://isp.example:99999/x", "isp.example"]
)
def test_what_is_not_an_https_url_is_refused(url: str) -> None:
    with pytest.raises(DestinationRefused):
        OutboundPolicy().check_registration(url, "notification_url")


def test_a_public_https_url_is_accepted() -> None:
    policy = OutboundPolicy(resolve=Resolver(isp_example=[[PUBLIC]]))
    assert policy.check_registration("https://isp.example/custos", "u") == (
        "https://isp.example/custos"
    )
    destination = policy.destination("https://isp.example:8443/n?x=1")
    assert (destination.host, destination.port, destination.target) == (
        "isp.example",
        8443,
        "/n?x=1",
    )
    assert destination.addresses == (PUBLIC,)


def test_the_operator_may_allow_a_network_or_a_host_by_name() -> None:
    by_network = OutboundPolicy.from_allowance(["127.0.0.0/8"])
    by_network.check_registration("http://127.0.0.1:8080/custos", "u")
    with pytest.raises(DestinationRefused):
        by_network.check_registration("http://10.0.0.1/custos", "u")

    by_name = OutboundPolicy.from_allowance(
        ["witness.local"], resolve=Resolver(witness_local=[["192.168.7.7"]])
    )
    by_name.check_registration("http://witness.local:9000/", "u")
    with pytest.raises(DestinationRefused):
        by_name.check_registration("http://192.168.7.7:9000/", "u")


def test_an_allowance_that_names_neither_a_host_nor_a_network_is_refused() -> None:
    with pytest.raises(ValueError, match="neither"):
        outbound_allowance(["http://127.0.0.1/"])


def test_registering_a_provider_applies_the_policy(deployment: Deployment) -> None:
    strict = Providers(deployment.providers.store, deployment.ledger, OutboundPolicy())
    operator = deployment.principals.get("operator").actor
    fields = {
        "name": "Scanner",
        "jurisdiction": "IE",
        "legal_representative": "x",
        "contact": "y",
    }
    for url in ("http://127.0.0.1:8080/", "https://u:p@isp.example/", "https://169.254.169.254/"):
        with pytest.raises(FieldErrors) as refused:
            strict.add({**fields, "notification_url": url}, operator)
        assert [name for name, _ in refused.value.errors] == ["notification_url"]
    assert deployment.providers.store.by_name("Scanner") is None


def test_the_address_is_checked_again_at_connection_time() -> None:
    # DNS rebinding: public when registered, the loopback when the notice is sent.
    resolver = Resolver(isp_example=[[PUBLIC], ["127.0.0.1"]])
    policy = OutboundPolicy(resolve=resolver)
    policy.check_registration("https://isp.example/custos", "notification_url")
    with pytest.raises(NoticeDeliveryError, match="not public"):
        HttpNoticeSender(timeout=5, outbound=policy)("https://isp.example/custos", b"note")
    assert resolver.asked == ["isp.example", "isp.example"]


def test_the_connection_goes_to_the_address_that_was_checked() -> None:
    # The name resolves only through the policy's resolver: a connection that resolved it
    # again (as http.client would) would find nothing; one to the checked address arrives.
    with Listener() as listener:
        port = listener.server.server_address[1]
        policy = OutboundPolicy.from_allowance(
            ["127.0.0.1"], resolve=Resolver(provider_invalid=[["127.0.0.1"]])
        )
        HttpNoticeSender(timeout=5, outbound=policy)(f"http://provider.invalid:{port}/n", b"note")
    (received,) = listener.received
    assert received.headers["Host"] == f"provider.invalid:{port}"
    assert received.body == b"note"


def test_a_notice_to_a_url_the_policy_refuses_is_never_sent(deployment: Deployment) -> None:
    with Listener() as listener:
        add_provider(deployment, notification_url=listener.url)  # allowed when registered
        with pytest.raises(NoticeDeliveryError, match="not public"):
            HttpNoticeSender(timeout=5)(listener.url, b"note")  # the default policy: no allowance
    assert listener.received == []


def test_https_connections_verify_the_host_name_not_the_address() -> None:
    connection, destination = OutboundPolicy(resolve=Resolver(isp_example=[[PUBLIC]])).connection(
        "https://isp.example/custos", 5, ssl.create_default_context()
    )
    assert (connection.host, destination.addresses) == ("isp.example", (PUBLIC,))
