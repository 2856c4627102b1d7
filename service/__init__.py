"""The HTTP edge: ``create_app`` builds the Flask app over one deployment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from service.problems import ProblemApi, register_problem_handlers
from storage.config import load_config
from storage.deployment import Deployment, open_deployment


def create_app(
    test_config: Mapping[str, Any] | None = None, *, deployment: Deployment | None = None
) -> Flask:
    """Build the app: settings, then the deployment (from ``CUSTOS_HOME`` unless given)."""
    app = Flask("custos")
    app.config.update(
        API_TITLE="Custos",
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        JSON_SORT_KEYS=False,
    )
    if test_config:
        app.config.update(test_config)
    if deployment is None:
        deployment = open_deployment(load_config(app.config.get("CUSTOS_HOME")))
    app.extensions["custos"] = deployment
    # Staging data older than the configured age belongs to no live upload: remove it.
    deployment.objects.sweep_staging(deployment.config.staging_max_age)

    from service import evidence, log

    api = ProblemApi(app)
    register_problem_handlers(app)
    api.register_blueprint(log.blp)
    api.register_blueprint(evidence.blp)
    return app
