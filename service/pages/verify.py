"""How to check a receipt, an order or an exhibit bundle offline, with what to do it with:
the service's verifier keys to pin and the one-file verifier (``make verifier``'s output)."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import sys
from pathlib import Path

from flask import Blueprint, Response, current_app, render_template

from custody.errors import NotFound
from service.pages.sessions import signed_in

bp = Blueprint("verify", __name__, url_prefix="/verify")
BUILDER = Path(__file__).resolve().parents[2] / "tools" / "build_verifier.py"
VERIFIER_NAME = "custos-verify.py"


@functools.cache
def one_file_verifier() -> bytes | None:
    """The one-file verifier, built from this checkout's sources exactly as ``make verifier``
    builds it (None where the service runs without its source tree)."""
    if not BUILDER.exists():
        return None
    spec = importlib.util.spec_from_file_location("custos_build_verifier", BUILDER)
    assert spec is not None and spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = builder  # its dataclasses look their module up there
    spec.loader.exec_module(builder)
    modules = builder.collect(builder.ROOT, builder.ENTRY_POINTS)
    text: str = builder.render(modules)
    builder.check(text, modules)
    return text.encode("utf-8")


def verifier_keys() -> list[str]:
    return [v.verifier_key() for v in current_app.extensions["custos"].ledger.keys.verifiers]


@bp.route("")
@signed_in()
def guide() -> str:
    verifier = one_file_verifier()
    return render_template(
        "verify.html",
        keys=verifier_keys(),
        origin=current_app.extensions["custos"].ledger.origin,
        verifier_sha256=hashlib.sha256(verifier).hexdigest() if verifier else None,
        verifier_name=VERIFIER_NAME,
    )


@bp.route("/keys.txt")
@signed_in()
def keys() -> Response:
    body = "".join(key + "\n" for key in verifier_keys())
    response = Response(body, mimetype="text/plain")
    response.headers["Content-Disposition"] = 'attachment; filename="custos-keys.txt"'
    return response


@bp.route(f"/{VERIFIER_NAME}")
@signed_in()
def verifier() -> Response:
    built = one_file_verifier()
    if built is None:
        raise NotFound("this installation has no verifier sources; run `make verifier`")
    response = Response(built, mimetype="text/x-python")
    response.headers["Content-Disposition"] = f'attachment; filename="{VERIFIER_NAME}"'
    return response
