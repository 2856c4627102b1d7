"""Serving under gunicorn: each worker builds its own app (and database engine) after fork.

gunicorn's own lines go through the same handler as the app's (``service.process_logs``), JSON
by default; its access log is off, because the app writes one access line per request with
the request id, the route and the principal.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.http.body import LengthReader
from gunicorn.http.errors import NoMoreData, ParseException
from gunicorn.workers.gthread import TConn, ThreadWorker
from gunicorn.workers.sync import SyncWorker
from werkzeug.exceptions import BadRequest, ClientDisconnected, RequestTimeout

from service import create_app
from service.process_logs import logging_config

MIN_BODY_RATE = 1024
"""Bytes a second a request or response body must keep up for its worker to count as alive
while it moves; a slower one gets no more than gunicorn's ``timeout`` in all, like a worker
that hangs."""


KEEPALIVE = 5
"""Seconds a kept-alive connection may wait for its next request before it is closed."""


class _ClientSilent(NoMoreData):  # type: ignore[misc]
    """The client sent nothing for the request timeout: gunicorn drops the connection as one
    the client closed (quietly), and a body read in the app becomes a 408."""


class _ClientSocket(socket.socket):
    """A client connection whose reads give up, as :class:`_ClientSilent`, once the client has
    been silent for the socket's timeout, and whose reads and writes report their size to
    ``moving`` if set. With ``request_timeout`` set, a blocking socket is one with that
    timeout (gunicorn's threaded worker makes a connection blocking for each request)."""

    moving: Callable[[int], None] | None = None
    request_timeout: float | None = None

    def setblocking(self, flag: bool) -> None:
        if flag and self.request_timeout is not None:
            self.settimeout(self.request_timeout)
        else:
            super().setblocking(flag)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        try:
            data = super().recv(bufsize, flags)
        except TimeoutError:
            raise _ClientSilent() from None
        if self.moving is not None:
            self.moving(len(data))
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        try:
            received = super().recv_into(buffer, nbytes, flags)
        except TimeoutError:
            raise _ClientSilent() from None
        if self.moving is not None:
            self.moving(received)
        return received

    def sendall(self, data: Any, flags: int = 0) -> None:
        # gunicorn writes every piece of a response with sendall; a client that takes none
        # of it for the socket's timeout makes it fail, and the connection is dropped.
        super().sendall(data, flags)
        if self.moving is not None:
            self.moving(len(memoryview(data)))


class _LengthBody:
    """A request body of known length, read from the client socket straight into the
    reader's buffer.

    gunicorn's body readers pass each byte through several buffers of their own (its
    unreader's, its body's, then slices of both), which for a large upload costs as much CPU
    as hashing it; here each byte is copied once from the kernel. It starts with what gunicorn
    had already read past the headers, and reads no further than the body's length.
    """

    def __init__(self, client: socket.socket, buffered: bytes, length: int) -> None:
        self._client = client
        self._pending = buffered[:length]
        self._left = length - len(self._pending)  # bytes still on the socket

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the body, blocking until it is full or the body has ended."""
        view = memoryview(buffer).cast("B")
        filled = min(len(view), len(self._pending))
        if filled:
            view[:filled] = self._pending[:filled]
            self._pending = self._pending[filled:]
        while filled < len(view) and self._left:
            received = self._client.recv_into(view[filled:], min(len(view) - filled, self._left))
            if not received:
                raise NoMoreData()
            filled += received
            self._left -= received
        return filled

    def read(self, size: int | None = None) -> bytes:
        if size is None or size < 0:
            # In pieces: the client chose the Content-Length, and sending fewer bytes than
            # it says must not cost the server memory for all of them.
            return b"".join(iter(lambda: self.read(1 << 20), b""))
        buffer = bytearray(min(size, len(self._pending) + self._left))
        filled = self.readinto(buffer)
        del buffer[filled:]
        return bytes(buffer)

    def readline(self, size: int | None = None) -> bytes:
        limit = size if size is not None and size >= 0 else len(self._pending) + self._left
        line = bytearray()
        while len(line) < limit:
            if not self._pending:
                if not self._left:
                    break
                self._pending = self.read(min(8192, self._left))
            end = self._pending.find(b"\n", 0, limit - len(line))
            take = end + 1 if end >= 0 else min(len(self._pending), limit - len(line))
            line += self._pending[:take]
            self._pending = self._pending[take:]
            if end >= 0:
                break
        return bytes(line)

    def readlines(self, size: int | None = None) -> list[bytes]:
        lines, total = [], 0
        while size is None or size <= 0 or total < size:
            line = self.readline()
            if not line:
                break
            lines.append(line)
            total += len(line)
        return lines


class _Heartbeat:
    """Tells gunicorn's arbiter that the worker is alive, at most once a second, while a body
    arrives, or an answer leaves, at MIN_BODY_RATE or faster on average."""

    def __init__(self, notify: Callable[[], None]) -> None:
        self._notify = notify
        self._since = time.monotonic()
        self._received = 0

    def __call__(self, received: int) -> None:
        self._received += received
        elapsed = time.monotonic() - self._since
        if elapsed >= 1.0 and self._received >= MIN_BODY_RATE * elapsed:
            self._notify()
            self._since += elapsed
            self._received = 0


class _Body:
    """A request body as gunicorn reads it, whose failures are the client's: a read that the
    client left unanswered for the request timeout is 408 Request Timeout, a body cut short or
    with broken chunked framing is 400 (gunicorn's own errors would be a 500)."""

    def __init__(self, body: Any) -> None:
        self._body = body
        self.failed = False  # a read failed: where the next request starts is unknown

    def read(self, size: int | None = None) -> bytes:
        data: bytes = self._read(self._body.read, size)
        return data

    def readinto(self, buffer: Any) -> int:
        """Read into ``buffer`` (werkzeug's request stream prefers this when it exists)."""
        if isinstance(self._body, _LengthBody):
            filled: int = self._read(self._body.readinto, buffer)
            return filled
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = None) -> bytes:
        line: bytes = self._read(self._body.readline, size)
        return line

    def readlines(self, size: int | None = None) -> list[bytes]:
        lines: list[bytes] = self._read(self._body.readlines, size)
        return lines

    def __iter__(self) -> _Body:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def _read(self, method: Callable[[Any], Any], argument: Any) -> Any:
        try:
            return method(argument)
        except _ClientSilent:
            self.failed = True
            raise RequestTimeout("the client stopped sending the request body") from None
        except NoMoreData:
            self.failed = True
            raise ClientDisconnected("the request body ended before it was complete") from None
        except ParseException as exc:
            self.failed = True
            raise BadRequest(f"the request body is malformed: {exc}") from None


def _take_body(req: Any, client: _ClientSocket) -> Any:
    """The request's body as the app reads it, and the one gunicorn reads what is left of.

    A body of known length is read straight from the socket (``_LengthBody``); what gunicorn
    had read past it already (the start of a pipelined next request) goes back to its
    reader for the next request on a kept-alive connection.
    """
    body = req.body
    if isinstance(body.reader, LengthReader):
        length = body.reader.length
        buffered = req.unreader.take_buffered()
        if len(buffered) > length:
            req.unreader.unread(buffered[length:])
        body = _LengthBody(client, buffered[:length], length)
    return body


class CustosWorker(SyncWorker):  # type: ignore[misc]
    """gunicorn's sync worker with a limit on how long a client may stay silent.

    A client that sends no byte of its request, or takes no byte of the answer, for the
    server's ``request_timeout`` seconds is cut off: a stalled request line or header is
    dropped, a stalled body fails with 408, so an upload ends like any failed one (nothing
    recorded, its session free again at once). While a body streams in, or an answer streams
    out, at MIN_BODY_RATE or faster, the worker tells the arbiter it is alive, so gunicorn's
    ``timeout``, which kills a worker that hangs, does not also kill an upload or a download
    that is long but moving. One request at a time, one connection each: ``custos serve``
    uses :class:`CustosThreadWorker`.
    """

    def accept(self, listener: socket.socket) -> None:
        client, addr = listener.accept()
        client = _ClientSocket(fileno=client.detach())
        client.settimeout(self.app.request_timeout)
        util.close_on_exec(client)
        self.handle(listener, client, addr)

    def handle_request(self, listener: socket.socket, req: Any, client: Any, addr: Any) -> None:
        # The request line and headers have been read: from here on, bytes are the body,
        # then the answer.
        client.moving = _Heartbeat(self.notify)
        req.body = _Body(_take_body(req, client))
        super().handle_request(listener, req, client, addr)


class CustosThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's threaded worker, with keep-alive, under the sync worker's limits.

    Requests run on ``threads`` threads; a kept-alive connection waits between requests in
    the worker's poller, holding no thread, for gunicorn's ``keepalive`` seconds. As in
    :class:`CustosWorker`, a client silent for ``request_timeout`` is cut off (a stalled
    header dropped, a stalled body 408). The arbiter's ``timeout`` applies to each request:
    the worker reports itself alive only as of its oldest request's last sign of life (its
    start, or its body moving at MIN_BODY_RATE or faster), so a request that hangs for
    ``timeout`` gets the worker restarted, as a hanging sync worker would be, while a long
    upload or download that keeps moving does not.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._alive: dict[int, float] = {}  # request -> its last sign of life (monotonic)

    def accept(self, listener: socket.socket) -> None:
        try:
            client, addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        client = _ClientSocket(fileno=client.detach())
        client.request_timeout = self.app.request_timeout
        client.setblocking(True)
        util.close_on_exec(client)
        self.enqueue_req(TConn(self.cfg, client, addr, listener.getsockname()))

    def notify(self) -> None:
        alive = min(self._alive.copy().values(), default=time.monotonic())
        os.utime(self.tmp.fileno(), (alive, alive))

    def handle_request(self, req: Any, conn: Any) -> bool:
        key = id(req)
        self._alive[key] = time.monotonic()

        def moving() -> None:
            self._alive[key] = time.monotonic()

        client: _ClientSocket = conn.sock
        client.moving = _Heartbeat(moving)
        body = _take_body(req, client)
        req.body = reading = _Body(body)
        try:
            kept: bool = super().handle_request(req, conn)
            # After a body that failed (a 408, a 400), where the next request would start is
            # unknown: the connection ends with the answer.
            return kept and not reading.failed
        finally:
            # What the app left unread of the body is drained by gunicorn before the next
            # request on the connection: from the body itself, whose failures end the
            # connection quietly.
            req.body = body
            client.moving = None
            del self._alive[key]


class CustosServer(BaseApplication):  # type: ignore[misc]
    """gunicorn with the Custos app factory and settings from the command line."""

    def __init__(self, home: str, options: dict[str, Any], request_timeout: float = 30.0) -> None:
        self.home = home
        self.options = options
        self.request_timeout = request_timeout
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        # Runs in each worker after the fork: each starts its own notice deliverer.
        return create_app(
            {"CUSTOS_HOME": self.home, "CUSTOS_NOTIFY": True, "CUSTOS_WITNESSING": True}
        )


def serve(
    home: str,
    host: str,
    port: int,
    workers: int,
    timeout: int = 120,
    log_format: str = "json",
    request_timeout: float = 30.0,
    threads: int = 8,
) -> None:
    CustosServer(
        home,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": CustosThreadWorker,
            "threads": threads,
            "keepalive": KEEPALIVE,
            "timeout": timeout,
            "accesslog": None,
            "logconfig_dict": logging_config(log_format),
            "preload_app": False,
            # gunicorn 27's control socket lives in ~/.gunicorn by default, shared by every
            # server on the machine (the last to stop deletes the others'): not needed here.
            "control_socket_disable": True,
        },
        request_timeout,
    ).run()
