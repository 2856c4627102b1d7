"""The drafting form of an order: its fields, named by the document's own paths, to the
order document's JSON and back.

The form checks nothing itself: ``OrderDocument.from_json`` (through the order desk) names
every field at fault at once, by its path (``targets[1].time``), and each message is placed
beside the form field of that path. What was typed goes back to the desk as typed (a
number that is not one, a time that is not one), so that the desk, not the page, says why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from custody.order_document import DATA_CATEGORIES

# Blank target rows the form offers beyond those filled in.
SPARE_TARGETS = 1
MIN_TARGETS = 2
AUTHORITY_FIELDS = ("name", "type", "file_number", "contact", "state")
ADDRESSEE_FIELDS = ("type", "name", "state", "contact")
# The parts of the document the form writes, each field by its path.
TEXT_FIELDS = (
    "reference",
    "case",
    "provider",
    "kind",
    "language",
    "legal_basis.instrument",
    "legal_basis.citation",
    *(f"issuing_authority.{name}" for name in AUTHORITY_FIELDS),
    *(f"validating_authority.{name}" for name in AUTHORITY_FIELDS),
    "offence.description",
    "offence.provision",
    "offence.max_penalty_years",
    "offence.listed_category",
    "offence.annex_iv_category",
    "offence_state",
    "residence_state",
    "facts",
    "link",
    "necessity_and_proportionality",
    "time_range.start",
    "time_range.end",
    "preservation_days",
    "emergency.flag",
    "emergency.category",
    "emergency.justification",
    "confidentiality.no_user_notice",
    "confidentiality.until",
    "confidentiality.reasons",
    "enforcing_authority.name",
    "enforcing_authority.state",
    "enforcing_authority.contact",
    "enforcing_authority.time_zone",
    "enforcing_authority.notification_url",
    *(f"addressee.{name}" for name in ADDRESSEE_FIELDS),
    *(f"emergency_addressee.{name}" for name in ADDRESSEE_FIELDS),
    "receiving_authority.name",
    "receiving_authority.contact",
    "custodian",
    "system_location",
    "mla_request_intended",
    "linked_order",
)
TARGET_FIELDS = ("type", "value", "port", "time")
NUMBERS = ("offence.max_penalty_years", "preservation_days")
TIMES = ("time_range.start", "time_range.end", "confidentiality.until")
YES_NO = ("emergency.flag", "confidentiality.no_user_notice", "mla_request_intended")
# A yes or no whose "no" is said, not assumed: it is kept as "no" when a draft is edited.
SAID_NO = ("mla_request_intended",)
# A browser's datetime-local value: the form asks for times in UTC.
_LOCAL_MINUTE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")
_INDEX = re.compile(r"\[(\d+)\]")


def target_rows(values: Mapping[str, str]) -> int:
    """How many target rows to show: those filled in, one spare, at least two."""
    filled = [
        int(m.group(1))
        for name, value in values.items()
        if value and (m := re.match(r"^targets\[(\d+)\]\.", name))
    ]
    return max(MIN_TARGETS, (max(filled) + 1 if filled else 0) + SPARE_TARGETS)


def field_id(path: str) -> str:
    """The HTML id of the form field of ``path`` (``targets[1].time``: f-targets-1-time)."""
    return "f-" + re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")


def values_of(form: Mapping[str, Any], categories: Iterable[str]) -> dict[str, str]:
    """What the person typed, by path, as the form sent it (trimmed); ``categories`` are the
    data categories ticked."""
    values = {name: str(form.get(name, "")).strip() for name in TEXT_FIELDS}
    for i in range(target_rows({k: str(v) for k, v in form.items()})):
        for name in TARGET_FIELDS:
            path = f"targets[{i}].{name}"
            values[path] = str(form.get(path, "")).strip()
    for category in categories:
        if category in DATA_CATEGORIES:
            values[f"data_categories.{category}"] = "on"
    return {name: value for name, value in values.items() if value}


def document_of(values: Mapping[str, str]) -> dict[str, Any]:
    """The order document's JSON from the form's values: empty fields are left out, an
    optional part with no field filled in is left out, numbers and times are converted when
    they are numbers and times and otherwise passed on as typed."""
    document: dict[str, Any] = {}
    for path in TEXT_FIELDS:
        if path in values:
            _put(document, path, _typed(path, values[path]))
    for part in ("legal_basis", "issuing_authority", "offence"):
        document.setdefault(part, {})
    for part in ("emergency", "confidentiality"):
        flag = "flag" if part == "emergency" else "no_user_notice"
        document.setdefault(part, {}).setdefault(flag, False)
    targets = []
    for i in range(target_rows(values)):
        target = {
            name: _typed(name, values[f"targets[{i}].{name}"])
            for name in TARGET_FIELDS
            if f"targets[{i}].{name}" in values
        }
        if target:
            targets.append(target)
    document["targets"] = targets
    document["data_categories"] = [
        c for c in DATA_CATEGORIES if values.get(f"data_categories.{c}") == "on"
    ]
    return document


def values_from_document(document: Mapping[str, Any]) -> dict[str, str]:
    """The form's values for an order document (editing a draft, or starting from another)."""
    values: dict[str, str] = {}
    for path in TEXT_FIELDS:
        found = _get(document, path)
        if found is False and path in SAID_NO:
            values[path] = "no"
            continue
        if found is None or found is False:
            continue
        if found is True:
            values[path] = "yes"
        elif path in TIMES:
            values[path] = _minute(str(found))
        else:
            values[path] = str(found)
    for i, target in enumerate(document.get("targets") or []):
        for name in TARGET_FIELDS:
            if target.get(name) is not None:
                value = str(target[name])
                values[f"targets[{i}].{name}"] = _minute(value) if name == "time" else value
    for category in document.get("data_categories") or []:
        values[f"data_categories.{category}"] = "on"
    return values


def merge_patch_to(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The RFC 7396 merge patch that turns the form's parts of ``old`` into ``new``: what the
    form emptied is removed (null), what it does not show is left as it was."""
    patch: dict[str, Any] = {}
    shown = {path.split(".", 1)[0] for path in TEXT_FIELDS} | {"targets", "data_categories"}
    for name in shown:
        before, after = old.get(name), new.get(name)
        if after is None:
            if before is not None:
                patch[name] = None
        elif isinstance(after, dict) and isinstance(before, dict):
            patch[name] = {k: None for k in before if k not in after} | after
        else:
            patch[name] = after
    return patch


def anchor(path: str, shown: Sequence[str]) -> str | None:
    """The form field a fault of ``path`` is shown beside: the field itself, else the first
    field of the part it names (``validating_authority``, ``targets``, ``data_categories[0]``),
    else None (the error summary alone names it)."""
    if path in shown:
        return path
    plain = _INDEX.sub("", path) if path.startswith("data_categories") else path
    for name in shown:
        if name == plain or name.startswith(plain + ".") or name.startswith(plain + "["):
            return name
    return None


def _typed(path: str, value: str) -> Any:
    name = path.rsplit(".", 1)[-1]
    if path in NUMBERS or name == "port":
        return int(value) if value.isdigit() else value
    if path in YES_NO:
        return value == "yes"
    if path in TIMES or name == "time":
        return utc_time(value)
    return value


def utc_time(value: str) -> str:
    """A browser's datetime-local value, which the form asks for in UTC, as RFC 3339;
    anything else as typed (the desk says what is wrong with it)."""
    if not _LOCAL_MINUTE.match(value):
        return value
    return value + (":00Z" if value.count(":") == 1 else "Z")


def _minute(moment: str) -> str:
    """An RFC 3339 UTC time as a datetime-local value (to the minute, in UTC)."""
    trimmed = moment.removesuffix("Z").removesuffix("+00:00")
    return trimmed[:16] if _LOCAL_MINUTE.match(trimmed) else moment


def _put(document: dict[str, Any], path: str, value: Any) -> None:
    head, _, rest = path.partition(".")
    if rest:
        _put(document.setdefault(head, {}), rest, value)
    else:
        document[head] = value


def _get(document: Mapping[str, Any], path: str) -> Any:
    head, _, rest = path.partition(".")
    found = document.get(head)
    if rest:
        return _get(found, rest) if isinstance(found, Mapping) else None
    return found
