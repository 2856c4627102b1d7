"""A Custos server for the benchmarks: ``custos --home H serve`` in a subprocess, started as
``make run`` starts it (gunicorn), on a new home, and stopped gracefully."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CUSTOS = Path(sys.executable).parent / "custos"
ORIGIN = "bench.invalid/log"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_env() -> dict[str, str]:
    """The environment without CUSTOS_* settings, so the home's defaults apply."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CUSTOS_")}


def custos_cli(home: Path, *args: str, custos: Path = CUSTOS) -> dict[str, Any]:
    done = subprocess.run(
        [str(custos), "--home", str(home), *args, "--json"],
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    if done.returncode != 0:
        raise RuntimeError(f"custos {' '.join(args)} failed: {done.stderr.strip()}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


class Server:
    """``custos --home H serve`` in a subprocess, as ``make run`` starts it (a new home each
    time; an examiner and its token made with the CLI)."""

    def __init__(
        self,
        home: Path,
        log: Path,
        workers: int = 2,
        settings: dict[str, str] | None = None,
        custos: Path = CUSTOS,
        cases: tuple[str, ...] = (),
    ) -> None:
        self.custos = custos  # another tree's command, to measure its code
        # The cases the examiner opens (and so is a member of) before the server starts.
        self.cases = cases
        self.home = home
        self.settings = settings or {}
        self.log = log
        self.workers = workers
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.token = ""

    def __enter__(self) -> Server:
        custos_cli(self.home, "init", "--origin", ORIGIN, custos=self.custos)
        examiner = ("principal", "add", "bench-examiner", "--role", "examiner")
        added = custos_cli(self.home, *examiner, custos=self.custos)
        self.token = added["token"]
        for reference in self.cases:
            opening = ("case", "open", reference, "--title", reference, "--authority", "bench")
            custos_cli(self.home, *opening, "--as", "bench-examiner", custos=self.custos)
        env = {**clean_env(), **self.settings}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*(str(self.custos), "--home", str(self.home), "serve"), *self.address_args()],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self._wait_ready()
        return self

    def address_args(self) -> list[str]:
        return ["--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)]

    def _wait_ready(self, timeout: float = 60.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        ready = 0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited; see {self.log}:\n{self.tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/v1/log/key")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    ready += 1
                    if ready >= 4:  # both gunicorn workers have most likely served one
                        return
                    continue
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server did not answer within {timeout:.0f} s:\n{self.tail()}")

    def tail(self) -> str:
        try:
            return "\n".join(self.log.read_text("utf-8", "replace").splitlines()[-20:])
        except OSError:
            return ""

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # gunicorn stops its workers gracefully
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
