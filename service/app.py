"""``create_app``: the Flask app over one deployment, its blueprints, docs and hooks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from custody.verify.escaping import escape_html
from service import body_limit, metrics, notices, process_logs, redirects, witnessing
from service.docs import SWAGGER_UI_URL, ResponsesByStatus, register_docs
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
        OPENAPI_URL_PREFIX="/v1",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=SWAGGER_UI_URL,
        # Swagger UI would otherwise show a badge fetched from an online validator.
        OPENAPI_SWAGGER_UI_CONFIG={"validatorUrl": None},
        API_SPEC_OPTIONS={
            "info": {"description": "Errors are RFC 9457 problem details (problem+json)."}
        },
        JSON_SORT_KEYS=False,
    )
    if test_config:
        app.config.update(test_config)
    if deployment is None:
        deployment = open_deployment(load_config(app.config.get("CUSTOS_HOME")))
    # Requests on the workers' threads share the services: build them all before any thread.
    deployment.build_services()
    app.extensions["custos"] = deployment
    # Staging data older than the configured age belongs to no live upload: remove it.
    deployment.objects.sweep_staging(deployment.config.staging_max_age)
    # A crash between an item's commit and its manifest's write leaves it without one.
    deployment.intake.repair_manifests()

    from service import (
        bundles,
        cases,
        evidence,
        health,
        log_api,
        orders,
        pages,
        principals,
        provider_api,
        providers,
    )

    api = ProblemApi(app, spec_kwargs={"extra_plugins": [ResponsesByStatus()]})
    register_problem_handlers(app)
    register_docs(app, api)
    process_logs.init_app(app)
    redirects.init_app(app)
    body_limit.init_app(app)
    # Pages escape user text with the one helper that also shows invisible characters.
    app.add_template_filter(escape_html, "visible")
    metrics.init_app(app, deployment.ledger, api)
    api.register_blueprint(health.blp)
    api.register_blueprint(log_api.blp)
    api.register_blueprint(cases.blp)
    api.register_blueprint(evidence.blp)
    api.register_blueprint(bundles.blp)
    api.register_blueprint(providers.blp)
    api.register_blueprint(principals.blp)
    api.register_blueprint(orders.blp)
    api.register_blueprint(provider_api.blp)
    notices.init_app(app)
    pages.init_app(app)
    witnessing.init_app(app)
    if hops := deployment.config.trust_proxy:
        # Behind that many reverse proxies, X-Forwarded-For/-Proto/-Host/-Port/-Prefix name the
        # client and the public URL; without one, a client could forge them.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops
        )
    return app
