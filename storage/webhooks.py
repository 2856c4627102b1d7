"""The notice sender: one HTTP POST of a signed note to a provider's notification URL.

Every way an attempt can fail (refused, unresolvable, timed out, TLS, a malformed answer, any
status but 2xx) becomes ``NoticeDeliveryError`` with a short message the authority sees as
the notice's ``last_error``. Redirects are never followed: a notification URL is registered
by an admin, and a 3xx must not send the note anywhere else. The note's text is never logged.
"""

from __future__ import annotations

import http.client
import ssl
from urllib.parse import SplitResult, urlsplit

from custody.notice_delivery import NoticeDelivery, NoticeDeliveryError
from custody.notices import NOTICE_TYPE
from storage.deployment import Deployment

CONTENT_TYPE = "text/plain; charset=utf-8"
NOTICE_HEADER = "Custos-Notice"
USER_AGENT = "custos-notifier"
_MAX_ERROR = 200


class WebhookSender:
    """``custody.notice_delivery.NoticeSender`` over HTTP(S), each attempt within ``timeout``
    seconds per connect, send and read; HTTPS certificates are verified."""

    def __init__(self, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.timeout = timeout
        self.tls = ssl.create_default_context()

    def __call__(self, url: str, note: bytes) -> None:
        parts = urlsplit(url)
        connection = self._connection(parts)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
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

    def _connection(self, parts: SplitResult) -> http.client.HTTPConnection:
        try:
            port = parts.port
        except ValueError:
            raise NoticeDeliveryError("the notification URL has an invalid port") from None
        if not parts.hostname:
            raise NoticeDeliveryError("the notification URL has no host")
        if parts.scheme == "https":
            return http.client.HTTPSConnection(
                parts.hostname, port, timeout=self.timeout, context=self.tls
            )
        if parts.scheme == "http":
            return http.client.HTTPConnection(parts.hostname, port, timeout=self.timeout)
        raise NoticeDeliveryError("the notification URL is not http or https")


def _failure(message: str) -> NoticeDeliveryError:
    return NoticeDeliveryError(message[:_MAX_ERROR])


def notice_delivery(deployment: Deployment) -> NoticeDelivery:
    """The deployment's notice delivery, as configured: ``notice_delivery(d).deliver_due()``
    attempts every notice due now, once (the background notifier and ``custos orders sweep``
    both call it)."""
    config = deployment.config
    return NoticeDelivery(
        deployment.orders.notices,
        WebhookSender(config.notify_timeout),
        deployment.ledger.clock,
        max_attempts=config.notify_max_attempts,
        base_delay=config.notify_base_delay,
        max_delay=config.notify_max_delay,
    )
