"""The cases a benchmark's items and orders go into: opened through the domain, as the API
and the CLI open them, with the benchmark's people in them."""

from __future__ import annotations

from datetime import timedelta

from custody.events import Actor
from storage.deployment import Deployment


def open_case(
    deployment: Deployment, reference: str, opener: Actor, *members: str, court: str | None = None
) -> str:
    """Open ``reference`` as ``opener`` (an examiner or authority), add ``members`` by name,
    and grant ``court`` (a court principal's name) the whole case for a year; its id."""
    values = {"reference": reference, "title": reference, "authority": "benchmark"}
    case, _ = deployment.cases.open(values, opener)
    for name in members:
        deployment.cases.add_member(case.id, name, "member", opener)
    if court is not None:
        ends_at = deployment.ledger.clock() + timedelta(days=365)
        grant = {"court": court, "proceeding": "benchmark", "ends_at": ends_at}
        deployment.cases.grant_court(case.id, grant, opener)
    return case.id
