"""The server's own log lines (not the custody ledger: that is ``service.log_api``): one JSON object
per line on standard error, each carrying the id of the request it was written for.

Every request gets an id: the caller's ``X-Request-Id`` when it is a plain token (at most 128
of ``A-Z a-z 0-9 . _ -``, so it cannot forge a line or a field), else a new random one. The
response echoes it in ``X-Request-Id``, and every line logged while serving the request carries
it, so one request's lines can be found among many workers'. One access line per request
(logger ``custos.access``) names the method, path, status, duration and the principal; no
header is ever logged, so a bearer token cannot reach a log. Query strings (which may name a
case or an access's purpose) are left out unless ``log_query_strings``
(``CUSTOS_LOG_QUERY_STRINGS``) is set.

``custos serve`` configures gunicorn's loggers and the root logger through
``logging_config`` (``CUSTOS_LOG_FORMAT``: ``json``, or ``text`` for a person at a terminal).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, current_app, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# A query string longer than this is cut in the access line.
_MAX_QUERY = 1024
# The attributes every LogRecord has; any other attribute came from ``extra=`` and is a field.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

access_log = logging.getLogger("custos.access")


def current_request_id() -> str | None:
    """The id of the request being served in this context, if any."""
    if has_request_context():
        request_id: str | None = g.get("request_id")
        return request_id
    return None


def request_id_from(header: str | None) -> str:
    """The caller's request id if it is well-formed, else a new random one."""
    if header is not None and _REQUEST_ID.fullmatch(header):
        return header
    return secrets.token_hex(16)


class RequestIdFilter(logging.Filter):
    """Give each record the ``request_id`` of the request being served (``None`` outside one),
    unless the record names one itself (the access line, written after the request ended)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: time (RFC 3339, UTC), level, logger, message,
    request_id, then the fields the record was given with ``extra=``, and any exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES and name not in line:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)


def logging_config(log_format: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server: everything, gunicorn's own lines too,
    through one handler on standard error in ``log_format`` (``json`` or ``text``); gunicorn's
    access log stays silent, since the app writes its own access line."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"custos": formatter},
        "filters": {"request_id": {"()": RequestIdFilter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "custos",
                "filters": ["request_id"],
            }
        },
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        },
    }


@dataclass(frozen=True)
class AnsweredRequest:
    """What the access line and the metrics record of one answered request."""

    request_id: str
    method: str
    path: str
    query: str
    route: str | None
    status: int
    principal: str | None
    remote_addr: str | None
    started: float

    def access_fields(self, duration_ms: float) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "request_id": self.request_id,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "duration_ms": duration_ms,
            "remote_addr": self.remote_addr,
        }
        if self.query:
            fields["query"] = self.query
        if self.principal is not None:
            fields["principal"] = self.principal
        return fields


# Called with each answered request and its duration in seconds, once its response is done.
AnsweredHook = Callable[[AnsweredRequest, float], None]
_HOOKS = "custos_answered_hooks"


def _start_request() -> None:
    g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
    g.request_started = time.perf_counter()


def _answer(response: Response) -> Response:
    """Echo the request id, and run the hooks when the response is done: at once, or for a
    streamed body once the server has sent it and closed the response."""
    if "request_id" not in g:  # a request refused before the app's first hook ran
        _start_request()
    response.headers[REQUEST_ID_HEADER] = g.request_id
    principal = g.get("principal")
    answered = AnsweredRequest(
        request_id=g.request_id,
        method=request.method,
        path=request.path,
        query=request.query_string.decode("latin-1")[:_MAX_QUERY] if _log_query() else "",
        route=request.url_rule.rule if request.url_rule is not None else None,
        status=response.status_code,
        principal=principal.id if principal is not None else None,
        remote_addr=request.remote_addr,
        started=g.request_started,
    )
    hooks: list[AnsweredHook] = current_app.extensions[_HOOKS]

    def done() -> None:
        seconds = time.perf_counter() - answered.started
        for hook in hooks:
            hook(answered, seconds)

    if response.is_streamed:
        response.call_on_close(done)
    else:
        done()
    return response


def _log_query() -> bool:
    deployment = current_app.extensions.get("custos")
    return bool(deployment is not None and deployment.config.log_query_strings)


def _write_access_line(answered: AnsweredRequest, seconds: float) -> None:
    duration_ms = round(seconds * 1000, 3)
    target = answered.path + (f"?{answered.query}" if answered.query else "")
    access_log.info(
        "%s %s %s %.1f ms",
        answered.method,
        target,
        answered.status,
        duration_ms,
        extra=answered.access_fields(duration_ms),
    )


def when_answered(app: Flask, hook: AnsweredHook) -> None:
    """Call ``hook`` for each request the app answers, once its response is done."""
    app.extensions[_HOOKS].append(hook)


def init_app(app: Flask) -> None:
    """Give every request an id, echo it in ``X-Request-Id`` and write its access line."""
    app.extensions[_HOOKS] = [_write_access_line]
    app.before_request_funcs.setdefault(None, []).insert(0, _start_request)
    app.after_request(_answer)
