"""``custos init`` and ``custos serve``: make a deployment home, and serve its API."""

from __future__ import annotations

import click

from commands.common import Command, deployment, emit, failure, json_option, warn_unencrypted_keys
from custody.errors import CustosError


@click.command(cls=Command)
@click.option("--origin", help="Log origin, e.g. custos.example.org/ledger (fixed once set).")
@click.option(
    "--store", help="Object store: file://PATH or s3://BUCKET/PREFIX (created or checked)."
)
@json_option
@click.pass_context
def init(ctx: click.Context, origin: str | None, store: str | None, as_json: bool) -> None:
    """Create a deployment (config, database, key, operator); running it again changes nothing."""
    from storage.config import load_config, with_overrides
    from storage.deployment import initialise

    try:
        config = load_config(ctx.obj["home"])
        if store:
            config = with_overrides(config, store=store)
        result = initialise(config, origin)
    except CustosError as exc:
        raise failure(exc) from None
    dep = result.deployment
    warn_unencrypted_keys(dep.config)
    try:
        key = dep.keys.current.verifier_key
        info = {
            "home": str(dep.config.home),
            "origin": dep.keys.origin,
            "key": key,
            "created": result.created,
            "operator_token": result.operator_token,
        }
        lines = [
            f"home:   {dep.config.home}",
            f"origin: {dep.keys.origin}",
            f"key:    {key}",
        ]
        if result.operator_token:
            lines.append(f"operator token (shown once, keep it safe): {result.operator_token}")
        elif not result.created:
            lines.append("already initialised; nothing changed")
        emit(as_json, info, "\n".join(lines))
    finally:
        dep.close()


@click.command(cls=Command)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--request-timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a client may send or take nothing before it is cut off "
    "(default: CUSTOS_REQUEST_TIMEOUT, 30).",
)
@click.option(
    "--worker-timeout",
    default=120,
    show_default=True,
    type=click.IntRange(min=1),
    help="Seconds a worker may hang (not reading an upload) before it is restarted.",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    workers: int,
    request_timeout: float | None,
    worker_timeout: int,
) -> None:
    """Serve the API under gunicorn."""
    import os
    import shutil
    import tempfile

    from service.metrics import MULTIPROC_DIR
    from service.wsgi import serve as run

    with deployment(ctx) as dep:
        config = dep.config  # fail fast, before forking workers, if the home is not usable
    # Each worker counts into its own files in a folder fresh for this run, and a scrape adds
    # them all up (service.metrics); a folder left by a killed run is never read again.
    (config.home / "run").mkdir(exist_ok=True)
    os.environ[MULTIPROC_DIR] = tempfile.mkdtemp(prefix="metrics-", dir=config.home / "run")
    master = os.getpid()
    try:
        run(
            ctx.obj["home"],
            host,
            port,
            workers,
            timeout=worker_timeout,
            log_format=config.log_format,
            request_timeout=request_timeout or config.request_timeout,
            threads=config.worker_threads,
        )
    finally:
        # Workers are forked inside run() and leave through here too (their SystemExit
        # unwinds this frame): only the master, once its workers are gone, removes the
        # folder, or a worker that stops early would take it from one still booting.
        if os.getpid() == master:
            shutil.rmtree(os.environ.pop(MULTIPROC_DIR), ignore_errors=True)
