"""The background witnessing: each configured witness is sent the newest checkpoint by a
thread of its own (custody/witnessing.py says what is sent and kept).

One thread per witness, so that a witness that is down or slow delays only its own
cosignature; each looks once a second, so a witness is sent at most the newest checkpoint
once a second by each server process. Only an app built with ``CUSTOS_WITNESSING`` true
starts them (``custos serve`` does), and only when ``CUSTOS_WITNESSES`` names witnesses.
"""

from __future__ import annotations

import atexit
import http.client
import logging
import ssl
import threading

from flask import Flask

from custody.outbound import DestinationRefused, OutboundPolicy
from custody.witnessing import Cosignatures, Post, WitnessClient, endpoints
from storage.deployment import Deployment

log = logging.getLogger("custos.witnessing")

INTERVAL = 1.0
"""Seconds between two looks at the log, per witness."""
TIMEOUT = 10.0
"""Seconds a witness may take to answer."""
MAX_ANSWER = 64 * 1024


def poster(policy: OutboundPolicy) -> Post:
    """POST a body to a witness through the outgoing-request policy (custody/outbound.py:
    public https addresses, or what ``CUSTOS_OUTBOUND_ALLOW`` allows, checked as each request
    connects); its status, content type and (bounded) body. No redirect is followed. Raises
    OSError when the witness cannot be reached or the policy refuses it."""
    tls = ssl.create_default_context()

    def post(url: str, body: bytes) -> tuple[int, str, bytes]:
        try:
            connection, destination = policy.connection(url, TIMEOUT, tls, "the witness")
        except DestinationRefused as exc:
            raise OSError(str(exc)) from None
        try:
            connection.request(
                "POST", destination.target, body=body, headers={"Content-Type": "text/plain"}
            )
            response = connection.getresponse()
            content_type = response.getheader("Content-Type", "")
            return response.status, content_type, response.read(MAX_ANSWER)
        except (http.client.HTTPException, ssl.SSLError) as exc:
            raise OSError(f"the witness at {url} answered badly: {exc}") from None
        finally:
            connection.close()

    return post


class Witnessing:
    """One daemon thread per witness, each submitting the newest checkpoint once a second."""

    def __init__(self, clients: list[WitnessClient], interval: float = INTERVAL) -> None:
        self.clients = clients
        self.interval = interval
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for client in self.clients:
            thread = threading.Thread(
                target=self._run, args=(client,), name=f"custos-witness-{client.witness.ident}"
            )
            thread.daemon = True
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(TIMEOUT)

    def _run(self, client: WitnessClient) -> None:
        while not self._stopping.is_set():
            try:
                client.submit()
            except OSError as exc:
                log.warning("witness %s cannot be reached: %s", client.witness.ident, exc)
            except Exception:
                log.exception("witnessing by %s failed; trying again", client.witness.ident)
            self._stopping.wait(self.interval)


def init_app(app: Flask) -> None:
    """Start the witnessing threads when ``CUSTOS_WITNESSING`` is set and witnesses are
    configured; they stop when the process exits."""
    deployment: Deployment = app.extensions["custos"]
    if not app.config.get("CUSTOS_WITNESSING") or not deployment.config.witnesses:
        return
    cosignatures: Cosignatures = deployment.cosignatures
    post_to_witnesses = poster(OutboundPolicy.from_allowance(deployment.config.outbound_allow))
    clients = [
        WitnessClient(deployment.ledger, cosignatures, witness, post_to_witnesses)
        for witness in endpoints(deployment.config.witnesses)
    ]
    witnessing = Witnessing(clients)
    app.extensions["custos_witnessing"] = witnessing
    witnessing.start()
    atexit.register(witnessing.stop)
