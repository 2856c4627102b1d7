"""The custody acts from the item page: one form per act, posted here and recorded through
``Handling.record_act`` exactly as the API records it.

The form offers only what the item's state allows (``examiner.offered_acts``), but the page
decides nothing: an act the state forbids, sent anyway, is refused by the domain (409 with
what is possible now) and changes nothing; a field at fault comes back beside its field,
with what was typed, every one at once.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, request, url_for

from custody.acts import ACT_FIELDS
from custody.errors import FieldErrors, NotFound
from service.pages.examiner import (
    EXAMINER_ROLES,
    act_slug,
    item_page,
    record_of,
    redirect_to,
)
from service.pages.sessions import deployment, signed_in

bp = Blueprint("examiner_acts", __name__, url_prefix="/examiner")
ACT_OF_SLUG = {act_slug(act): act for act in ACT_FIELDS}


@bp.route("/items/<evidence_id>/acts/<slug>", methods=["POST"])
@signed_in(*EXAMINER_ROLES)
def record(evidence_id: str, slug: str) -> Response:
    """Record one act on the item; back to the item, saying it is done."""
    act = ACT_OF_SLUG.get(slug)
    if act is None:
        raise NotFound(f"no custody act {slug}")
    record_of(evidence_id)
    # Only the act's own fields, and only those filled in: an empty one is missing.
    values = {
        spec.name: request.form[spec.name]
        for spec in ACT_FIELDS[act]
        if request.form.get(spec.name, "").strip()
    }
    try:
        deployment().handling.record_act(evidence_id, act, values, g.principal.actor)
    except FieldErrors as refused:
        errors = {name: why[:1].upper() + why[1:] for name, why in refused.errors}
        return item_page(
            record_of(evidence_id), errors=errors, values=values, form=slug, status=422
        )
    return redirect_to(url_for("pages.examiner.item", evidence_id=evidence_id, done=slug))
