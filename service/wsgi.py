"""Serving under gunicorn: each worker builds its own app (and database engine) after fork."""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from service import create_app


class CustosServer(BaseApplication):  # type: ignore[misc]
    """gunicorn with the Custos app factory and settings from the command line."""

    def __init__(self, home: str, options: dict[str, Any]) -> None:
        self.home = home
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        # Runs in each worker after the fork: each starts its own notice deliverer.
        return create_app({"CUSTOS_HOME": self.home, "CUSTOS_NOTIFY": True})


def serve(home: str, host: str, port: int, workers: int, timeout: int = 120) -> None:
    CustosServer(
        home,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "timeout": timeout,
            "accesslog": "-",
            "preload_app": False,
            # gunicorn 27's control socket lives in ~/.gunicorn by default, shared by every
            # server on the machine (the last to stop deletes the others'): not needed here.
            "control_socket_disable": True,
        },
    ).run()
