"""Liveness and readiness, for a load balancer or an orchestrator; both public.

``/healthz`` answers whenever the process does, and touches nothing: a failing database must
not get a healthy process restarted. ``/readyz`` says whether this worker can serve now: the
database answers, the object store answers and holds the newest checkpoint the database
names, and the signing key loads. A failed check is 503 (problem+json, ``Retry-After``)
naming the checks that failed; why they failed goes to the log, not to the caller. Files of
the deployment readable by other accounts (``storage.private_files``) are logged, and leave
the answer as it is: the caller is anonymous, and the worker can serve.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from custody.interfaces import KeptCheckpoint
from custody.ledger import checkpoint_key
from service.docs import problem_responses
from service.problems import problem
from storage.deployment import Deployment
from storage.private_files import wider_paths

log = logging.getLogger("custos.health")

blp = Blueprint("health", __name__, description="Liveness and readiness")

OK = "ok"
FAILED = "failed"


class LiveSchema(Schema):
    status = fields.String(required=True, metadata={"description": "always ok"})


class ReadySchema(Schema):
    status = fields.String(required=True, metadata={"description": "ready"})
    checks = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": "each check (database, object_store, signing_key): ok"},
    )


def _deployment() -> Deployment:
    deployment: Deployment = current_app.extensions["custos"]
    return deployment


def _readiness(deployment: Deployment) -> dict[str, str]:
    """Each check's outcome. One indexed row read is the database check; its answer names the
    newest checkpoint, which the store must then hold (a store that lost its data, or a
    filesystem store whose folder is gone, fails here; a fresh log checks reachability only)."""
    latest: list[KeptCheckpoint | None] = []

    def database() -> None:
        latest.append(deployment.ledger.store.latest_checkpoint())

    def object_store() -> None:
        newest = latest[0] if latest else None
        if newest is None:
            deployment.objects.exists(checkpoint_key(0))  # it answers: all a fresh log can ask
        elif not deployment.objects.exists(checkpoint_key(newest.size)):
            raise LookupError(f"the store lacks {checkpoint_key(newest.size)}, the newest")

    def signing_key() -> None:
        # Reads keyring.json and loads (decrypts) the current key, unless already loaded.
        if not deployment.keys.current.verifier_key:
            raise LookupError("no current signing key")

    checks: dict[str, Callable[[], None]] = {
        "database": database,
        "object_store": object_store,
        "signing_key": signing_key,
    }
    outcome: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:
            # Any failure makes this worker not ready; the details name internals: log only.
            log.warning("readiness check %s failed: %s", name, exc)
            outcome[name] = FAILED
        else:
            outcome[name] = OK
    return outcome


def _log_wide_paths(deployment: Deployment) -> None:
    try:
        wide = wider_paths(deployment.config, objects=False)
    except OSError as exc:
        log.warning("could not check the modes of the deployment's files: %s", exc)
        return
    if wide:
        log.warning(
            "files readable or writable by other accounts (run custos init to narrow them): %s",
            "; ".join(map(str, wide)),
        )


@blp.route("/healthz")
@blp.response(200, LiveSchema)
def healthz() -> dict[str, Any]:
    """Liveness: the process answers. Checks nothing else."""
    return {"status": OK}


@blp.route("/readyz")
@blp.response(200, ReadySchema)
@problem_responses(blp, 503)
def readyz() -> Any:
    """Readiness: the database, the object store and the signing key are all usable."""
    deployment = _deployment()
    checks = _readiness(deployment)
    _log_wide_paths(deployment)
    failed = [name for name, outcome in checks.items() if outcome != OK]
    if failed:
        return problem(503, f"not ready: {', '.join(failed)} failed", checks=checks)
    return {"status": "ready", "checks": checks}
