"""A small HTTP client for the Custos API, used by ``custos --server URL`` commands.

Standard library only (http.client), streaming in both directions so an upload or a
download of any size uses constant memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from http.client import HTTPConnection, HTTPResponse, HTTPSConnection
from typing import Any, BinaryIO
from urllib.parse import urlencode, urlsplit

from custody.errors import CustosError

CHUNK = 1 << 20


class ApiError(CustosError):
    """The server answered with an error (its problem+json detail is the message)."""

    def __init__(self, status: int, detail: str, body: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.body = body or {}


class CustosClient:
    """Calls one Custos server with one bearer token."""

    def __init__(self, url: str, token: str, timeout: float = 300.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CustosError(f"--server {url!r} is not an http(s) URL")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._base = parts.path.rstrip("/")
        self._token = token
        self._timeout = timeout

    def _connection(self) -> HTTPConnection:
        kind = HTTPSConnection if self._scheme == "https" else HTTPConnection
        return kind(self._host, self._port, timeout=self._timeout)

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None = None,
        body: bytes | Iterator[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HTTPResponse:
        url = self._base + path
        clean = {k: v for k, v in (query or {}).items() if v is not None}
        if clean:
            url += "?" + urlencode(clean)
        connection = self._connection()
        all_headers = {"Authorization": f"Bearer {self._token}", **(headers or {})}
        try:
            connection.request(method, url, body=body, headers=all_headers)
            response = connection.getresponse()
        except OSError as exc:
            raise CustosError(f"cannot reach the server: {exc}") from None
        if response.status >= 400:
            raw = response.read()
            try:
                problem = json.loads(raw)
                detail = str(problem.get("detail", raw[:200]))
            except ValueError:
                problem, detail = None, raw[:200].decode(errors="replace")
            raise ApiError(response.status, detail, problem)
        return response

    def json(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None = None,
        payload: Any = None,
    ) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        return json.loads(self._send(method, path, query, body, headers).read())

    def upload(
        self,
        path: str,
        source: BinaryIO,
        size: int,
        headers: Mapping[str, str],
        progress: Callable[[int], object] | None = None,
    ) -> Any:
        def chunks() -> Iterator[bytes]:
            for chunk in iter(lambda: source.read(CHUNK), b""):
                if progress is not None:
                    progress(len(chunk))
                yield chunk

        all_headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(size),
            **headers,
        }
        return json.loads(self._send("PUT", path, None, chunks(), all_headers).read())

    def download(
        self,
        path: str,
        query: Mapping[str, Any],
        sink: Callable[[bytes], object],
        progress: Callable[[int], object] | None = None,
        *,
        payload: Any = None,
    ) -> Mapping[str, str]:
        """Stream a body into ``sink`` (a GET, or with ``payload`` a POST of that JSON);
        returns the response headers."""
        if payload is None:
            response = self._send("GET", path, query)
        else:
            body = json.dumps(payload).encode()
            headers = {"Content-Type": "application/json"}
            response = self._send("POST", path, query, body, headers)
        received = 0
        for chunk in iter(lambda: response.read(CHUNK), b""):
            sink(chunk)
            received += len(chunk)
            if progress is not None:
                progress(len(chunk))
        headers = dict(response.getheaders())
        expected = headers.get("Content-Length")
        if expected is not None and received != int(expected):
            raise CustosError(
                f"the download was cut short after {received} of {expected} bytes "
                "(the server stops a download whose bytes fail their digest check)"
            )
        return headers
