"""The alert sender: one e-mail handed to the configured SMTP server (smtplib).

Every way an attempt can fail (unreachable, refused, timed out, TLS, authentication, a
recipient or the message refused) becomes ``AlertDeliveryError`` with a short message for the
operator's log; the outbox keeps only "not delivered" and when. The message's text is never
logged.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from custody.alerts import AlertDelivery, AlertDeliveryError
from custody.interfaces import Clock
from storage.config import Config
from storage.deployment import Deployment

_MAX_ERROR = 200


class SmtpAlertSender:
    """``custody.alerts.AlertSender`` over SMTP: a connection per message, STARTTLS, TLS or
    neither as configured (certificates verified), a login when a username is set."""

    def __init__(self, config: Config, clock: Clock) -> None:
        self.host = config.smtp_host
        self.port = config.smtp_port
        self.security = config.smtp_security
        self.username = config.smtp_username
        self.password = config.smtp_password
        self.sender = config.smtp_from
        self.timeout = config.smtp_timeout
        self.clock = clock
        self.tls = ssl.create_default_context()

    def message(self, recipient: str, subject: str, body: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = recipient
        message["Subject"] = subject
        message["Date"] = format_datetime(self.clock())
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2])
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        message.set_content(body)
        return message

    def __call__(self, recipient: str, subject: str, body: str) -> None:
        message = self.message(recipient, subject, body)
        try:
            if self.security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self.tls
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.security == "starttls":
                    client.starttls(context=self.tls)
                if self.username is not None and self.password is not None:
                    client.login(self.username, self.password)
                client.send_message(message)
        except smtplib.SMTPResponseException as exc:
            raise _failure(f"SMTP {exc.smtp_code}") from None
        except smtplib.SMTPRecipientsRefused:
            raise AlertDeliveryError("the mail server refused the recipient") from None
        except smtplib.SMTPException as exc:
            raise _failure(f"SMTP: {type(exc).__name__}") from None
        except TimeoutError:
            raise AlertDeliveryError(f"no answer within {self.timeout:g} s") from None
        except ssl.SSLError as exc:
            raise _failure(f"TLS: {exc.reason or exc}") from None
        except OSError as exc:
            raise _failure(f"connection failed: {exc.strerror or exc}") from None


def _failure(message: str) -> AlertDeliveryError:
    return AlertDeliveryError(message[:_MAX_ERROR])


def alert_delivery(deployment: Deployment) -> AlertDelivery:
    """The deployment's alert delivery (its retries as the notices'); the alert worker and
    ``custos orders sweep`` call its ``deliver_due``. Only where alerts are on."""
    config = deployment.config
    clock = deployment.ledger.clock
    alerts = deployment.orders.alerts
    if alerts is None:
        raise ValueError("alerts are off: no SMTP server is configured")
    return AlertDelivery(
        alerts.store,
        SmtpAlertSender(config, clock),
        clock,
        max_attempts=config.notify_max_attempts,
        base_delay=config.notify_base_delay,
        max_delay=config.notify_max_delay,
    )
