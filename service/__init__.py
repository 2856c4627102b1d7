"""The HTTP edge: ``create_app`` builds the Flask app over one deployment (``service.app``).

The package itself imports nothing more, so that the command line, which uses only its
client and backends, does not load Flask and every blueprint to start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from storage.deployment import Deployment


def create_app(
    test_config: Mapping[str, Any] | None = None, *, deployment: Deployment | None = None
) -> Flask:
    """Build the app: settings, then the deployment (from ``CUSTOS_HOME`` unless given)."""
    from service.app import create_app as build

    return build(test_config, deployment=deployment)
