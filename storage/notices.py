"""The notice sender: one HTTP POST of a signed note to a provider's notification URL.

The URL is checked again by the outgoing-request policy (``custody.outbound``) just before
each attempt, and the connection goes to the address it checked. Every way an attempt can
fail (refused by the policy, refused, unresolvable, timed out, TLS, a malformed answer, any
status but 2xx) becomes ``NoticeDeliveryError`` with a short message for the operator's log;
the authority sees only that the notice was not delivered, and when. Redirects are never
followed: a 3xx must not send the note anywhere else. The note's text is never logged.
"""

from __future__ import annotations

import http.client
import ssl

from custody.note_types import NOTICE_TYPE
from custody.notices import NoticeDelivery, NoticeDeliveryError
from custody.outbound import DestinationRefused, OutboundPolicy
from storage.deployment import Deployment

CONTENT_TYPE = "text/plain; charset=utf-8"
NOTICE_HEADER = "Custos-Notice"
USER_AGENT = "custos-notices"
_MAX_ERROR = 200


class HttpNoticeSender:
    """``custody.notices.NoticeSender`` over HTTP(S), each attempt within ``timeout``
    seconds per connect, send and read; HTTPS certificates are verified."""

    def __init__(self, timeout: float, outbound: OutboundPolicy | None = None) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.timeout = timeout
        self.tls = ssl.create_default_context()
        self.outbound = outbound or OutboundPolicy()

    def __call__(self, url: str, note: bytes) -> None:
        try:
            connection, destination = self.outbound.connection(
                url, self.timeout, self.tls, "the notification URL"
            )
        except DestinationRefused as exc:
            raise _failure(str(exc)) from None
        target = destination.target
        headers = {
            "Content-Type": CONTENT_TYPE,
            NOTICE_HEADER: NOTICE_TYPE,
            "Content-Length": str(len(note)),
            "User-Agent": USER_AGENT,
        }
        try:
            connection.request("POST", target, body=note, headers=headers)
            status = connection.getresponse().status
        except (http.client.InvalidURL, UnicodeEncodeError):
            raise NoticeDeliveryError("the notification URL is not a valid HTTP target") from None
        except TimeoutError:
            raise NoticeDeliveryError(f"no answer within {self.timeout:g} s") from None
        except ssl.SSLError as exc:
            raise _failure(f"TLS: {exc.reason or exc}") from None
        except ConnectionRefusedError:
            raise NoticeDeliveryError("connection refused") from None
        except OSError as exc:
            raise _failure(f"connection failed: {exc.strerror or exc}") from None
        except http.client.HTTPException as exc:
            raise _failure(f"malformed HTTP answer: {type(exc).__name__}") from None
        finally:
            connection.close()
        if 300 <= status < 400:
            raise NoticeDeliveryError(f"HTTP {status}: redirects are not followed")
        if not 200 <= status < 300:
            raise NoticeDeliveryError(f"HTTP {status}")


def _failure(message: str) -> NoticeDeliveryError:
    return NoticeDeliveryError(message[:_MAX_ERROR])


def notice_delivery(deployment: Deployment) -> NoticeDelivery:
    """The deployment's notice delivery, as configured: ``notice_delivery(d).deliver_due()``
    attempts every notice due now, once (the notice worker and ``custos orders sweep``
    both call it)."""
    config = deployment.config
    return NoticeDelivery(
        deployment.orders.notices,
        HttpNoticeSender(config.notify_timeout, deployment.providers.outbound),
        deployment.ledger.clock,
        max_attempts=config.notify_max_attempts,
        base_delay=config.notify_base_delay,
        max_delay=config.notify_max_delay,
        on_delivered=deployment.orders.notice_delivered,
    )
