"""The real server, for tests that drive it over HTTP: ``custos serve`` (gunicorn) in a process of
its own, the ``custos`` command in subprocesses, and the calls a client makes.

``Server`` runs ``custos serve`` as a subprocess. ``WarmServers`` is for tests that restart the
server many times: one Python that has already imported what ``custos serve`` imports forks
each server on demand, so that a restart costs gunicorn's start and not the imports (seconds
on a busy machine). Each server runs in a session of its own, so that ``kill()`` takes its
gunicorn master and every worker down at once with SIGKILL, as a crash would.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CUSTOS = Path(sys.executable).parent / "custos"
# Bounds on every wait, in seconds.
CLI_TIMEOUT = 60.0
STARTUP_TIMEOUT = 30.0
HTTP_TIMEOUT = 10.0
STOP_TIMEOUT = 20.0


def clean_env(**settings: str) -> dict[str, str]:
    """The environment without CUSTOS_* settings (the home's own apply), plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOS_")}
    return {**env, **settings}


def custos_json(home: Path, *commands: Sequence[str]) -> list[dict[str, Any]]:
    """Run ``custos --home H <command> --json`` for each command, all at once (they touch
    different things), and return the last JSON line each printed."""
    processes = [
        subprocess.Popen(
            [str(CUSTOS), "--home", str(home), *command, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        for command in commands
    ]
    results: list[dict[str, Any]] = []
    try:
        for command, process in zip(commands, processes, strict=True):
            out, err = process.communicate(timeout=CLI_TIMEOUT)
            assert process.returncode == 0, f"custos {' '.join(command)}: {err}"
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def serve_arguments(home: Path, port: int, workers: int) -> list[str]:
    """The arguments of ``custos`` that serve ``home`` on loopback."""
    return [
        "--home",
        str(home),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


class RunningServer(ABC):
    """What every way of running the server shares: its port, its log and the calls to it."""

    def __init__(self, log: Path, port: int) -> None:
        self.log = log
        self.port = port

    @abstractmethod
    def running(self) -> bool:
        """Whether the server's process is still alive."""

    def tail(self) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text("utf-8", "replace").splitlines()[-30:])

    def wait_ready(self, answers: int = 4) -> None:
        """Until the log key has been served ``answers`` times (with as many answers as
        workers, most likely every worker is up), within STARTUP_TIMEOUT."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        answered = 0
        while answered < answers:
            if not self.running():
                pytest.fail(f"the server exited:\n{self.tail()}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the server did not answer within {STARTUP_TIMEOUT:g} s:\n{self.tail()}"
                )
            try:
                if self.call("GET", "/v1/log/key").status == 200:
                    answered += 1
                    continue
            except OSError:
                pass
            time.sleep(0.05)

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        *,
        json_body: object = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = HTTP_TIMEOUT,
    ) -> Reply:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        body = content
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json")
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return Reply(response.status, response.headers, response.read())
        finally:
            connection.close()


class Server(RunningServer):
    """``custos --home H serve`` (gunicorn) in a subprocess, its output in a log.

    ``settings`` are CUSTOS_* (or other) variables for the server's environment.
    """

    def __init__(
        self,
        home: Path,
        log: Path,
        *,
        workers: int = 2,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(log, free_port())
        self.home = home
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(CUSTOS), *serve_arguments(home, self.port, workers)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=clean_env(**(settings or {})),
                start_new_session=True,
            )

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int:
        """SIGTERM (gunicorn stops its workers gracefully); the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL to the server's process group: the gunicorn master and all its workers."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


# The forking Python: it imports what ``custos serve`` imports (the app factory imports the
# API's modules when it runs: those too), then for each line it reads (a port, a tab, a log
# path) forks a child that starts a session of its own, reads nothing, writes to the log and runs
# ``custos --home HOME serve`` on that port; it answers with the child's pid. The children's
# exits are reaped at once (SIGCHLD ignored), and each child puts the default back before
# gunicorn installs its own handler.
_FORKER = """
import importlib, os, pkgutil, signal, sys
import cli, service, service.wsgi
for module in pkgutil.iter_modules(service.__path__, "service."):
    importlib.import_module(module.name)
home, workers = sys.argv[1], sys.argv[2]
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
print("ready", flush=True)
for line in sys.stdin:
    port, log = line.rstrip("\\n").split("\\t")
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(out, 1)
            os.dup2(out, 2)
            cli.main(["--home", home, "serve", "--host", "127.0.0.1", "--port", port,
                      "--workers", workers])
        finally:
            os._exit(1)
    print(pid, flush=True)
"""


class ForkedServer(RunningServer):
    """A server that ``WarmServers`` forked: the leader of its own process group."""

    def __init__(self, pid: int, log: Path, port: int) -> None:
        super().__init__(log, port)
        self.pid = pid
        # Once it has been killed or stopped its pid is never signalled again: the number may
        # belong to another process by then.
        self.ended = False

    def running(self) -> bool:
        """Whether the gunicorn master runs (it outlives its workers when stopped)."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL to the server's process group: the gunicorn master and all its workers."""
        if not self.ended:
            self.ended = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM to the gunicorn master, which stops its workers; until they are gone."""
        if self.ended:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            self.ended = True
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.running():
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"the server did not stop within {STOP_TIMEOUT:g} s")
            time.sleep(0.05)
        self.ended = True


class WarmServers:
    """Starts servers of one home quickly, by forking them from a Python that has imported
    ``custos`` once. ``settings`` are the servers' environment variables, as for ``Server``."""

    def __init__(
        self, home: Path, *, workers: int = 2, settings: Mapping[str, str] | None = None
    ) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _FORKER, str(home), str(workers)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=clean_env(**(settings or {})),
        )
        self.started: list[ForkedServer] = []

    def _line(self) -> str:
        """The forking Python's next answer, within STARTUP_TIMEOUT (it answers each request
        with one line, so nothing is left in the buffer that select cannot see)."""
        assert self.process.stdout is not None
        readable, _, _ = select.select([self.process.stdout], [], [], STARTUP_TIMEOUT)
        if not readable:
            pytest.fail(f"the forking Python did not answer within {STARTUP_TIMEOUT:g} s")
        line = self.process.stdout.readline()
        if not line:
            pytest.fail("the forking Python exited")
        return line.strip()

    def wait_ready(self) -> None:
        """Until its imports are done."""
        assert self._line() == "ready"

    def start(self, log: Path) -> ForkedServer:
        """Fork a server; it starts answering soon after (``wait_ready``)."""
        assert self.process.stdin is not None
        port = free_port()
        self.process.stdin.write(f"{port}\t{log}\n")
        self.process.stdin.flush()
        server = ForkedServer(int(self._line()), log, port)
        self.started.append(server)
        return server

    def close(self) -> None:
        """Kill every server it started and did not end, then end the forking Python."""
        for server in self.started:
            server.kill()
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
