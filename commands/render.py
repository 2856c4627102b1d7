"""Readable text for people: an item, its custody history, an act just recorded, an order.

Every command prints this by default and the JSON with ``--json``; the two carry the same
facts. Lines are plain text (no colour, no control characters from the data: values are
shown with their escapes), so they read the same in a terminal, a log and a pasted e-mail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "act_text",
    "custody_text",
    "item_text",
    "order_text",
    "shown",
    "state_words",
    "table",
]

INDENT = "  "


def shown(value: Any) -> str:
    """A value as one printable line: text with its control characters escaped, ``-`` for
    nothing, lists joined by commas, yes/no for booleans."""
    if value is None or value == "" or value == [] or value == {}:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(shown(v) for v in value)
    if isinstance(value, Mapping):
        return "; ".join(f"{k} {shown(v)}" for k, v in value.items() if v not in (None, ""))
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def fields(pairs: Iterable[tuple[str, Any]], width: int = 0) -> list[str]:
    """``label  value`` lines, labels aligned."""
    rows = [(label, shown(value)) for label, value in pairs]
    width = max([width, *(len(label) for label, _ in rows)])
    return [f"{label:<{width}}  {value}" for label, value in rows]


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain table: a header line, then one line per row, columns padded to their widest."""
    cells = [[shown(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    lines = [headers, *cells]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def state_words(state: Mapping[str, Any]) -> str:
    """An item's custody state in words: disposed, sealed, on legal hold, checked out."""
    words = []
    if state.get("disposed"):
        words.append("disposed")
    if state.get("sealed"):
        words.append("sealed")
    if state.get("on_hold"):
        words.append("on legal hold")
    if state.get("checked_out_to"):
        words.append(f"checked out to {shown(state['checked_out_to'])}")
    return ", ".join(words) or "in custody"


def _acts(allowed: Sequence[str]) -> str:
    return ", ".join(a.split(".", 1)[-1] for a in allowed) or "none"


def item_text(item: Mapping[str, Any]) -> str:
    """An evidence item: what it is, its digests, its acquisition, state and what may follow."""
    head = f"{item['case']} / {item['exhibit']}: {shown(item.get('description'))}"
    size = item.get("size")
    lines = [
        head,
        *fields(
            [
                ("id", item["id"]),
                ("kind", item["kind"]),
                ("size", f"{size:,} bytes" if isinstance(size, int) else None),
                ("received", item.get("received_at")),
                ("derived from", item.get("parent")),
                ("ledger index", item.get("ledger_index")),
                ("state", state_words(item.get("state") or {})),
                ("may next", _acts(item.get("allowed_actions") or [])),
            ]
        ),
    ]
    digests = item.get("digests") or {}
    if digests:
        lines.append("digests")
        lines += [f"{INDENT}{alg:<8} {value}" for alg, value in sorted(digests.items())]
    acquisition = item.get("acquisition") or {}
    if acquisition:
        lines.append("acquisition")
        pairs = sorted((k.replace("_", " "), v) for k, v in acquisition.items())
        lines += [INDENT + line for line in fields(pairs)]
    return "\n".join(lines)


def event_line(
    event: Mapping[str, Any], indent: str = "", names: Mapping[str, str] | None = None
) -> str:
    """One custody event: index, time, what happened in words, who (by name, where
    ``names`` has it), and its details on a second line."""
    actor = event.get("actor") or {}
    actor_id, role = actor.get("id", "?"), actor.get("role", "?")
    name = (names or {}).get(actor_id)
    who = f"{name} ({role}, {actor_id})" if name else f"{actor_id} ({role})"
    details = "; ".join(
        f"{k.replace('_', ' ')} {shown(v)}" for k, v in sorted((event.get("data") or {}).items())
    )
    # The events' words live with the verifier's report; loaded where an event is shown, so
    # that a list of principals or providers starts without the verifier.
    from custody.verify.report import event_label

    what = f"{event_label(event['type'])} [{event['type']}]"
    line = f"{indent}#{event['index']:<6} {event['time']}  {what}, by {who}"
    return f"{line}\n{indent}{INDENT}{details}" if details else line


def custody_text(
    events: Sequence[Mapping[str, Any]], names: Mapping[str, str] | None = None
) -> str:
    return "\n".join(event_line(e, names=names) for e in events)


def act_text(done: Mapping[str, Any]) -> str:
    """An act just recorded, and the item's state after it."""
    from custody.verify.report import event_label

    event = done["event"]
    return "\n".join(
        [
            f"recorded: {event_label(event['type'])} [{event['type']}], ledger index "
            f"{event['index']}",
            f"{done['case']} / {done['exhibit']} is now {state_words(done.get('state') or {})}; "
            f"may next: {_acts(done.get('allowed_actions') or [])}",
        ]
    )


def order_text(order: Mapping[str, Any]) -> str:
    """An order: its reference, state, deadline, the signed document's main parts, what may
    follow, its timeline, notices and responses."""
    document = order.get("document") or {}
    authority = document.get("issuing_authority") or {}
    basis = document.get("legal_basis") or {}
    offence = document.get("offence") or {}
    # Every period runs from the provider's receipt: until then there is no deadline.
    served = order.get("served_at") is not None
    lines = [
        f"{order['reference']}: {order['kind']} order, {order['state'].replace('_', ' ')}",
        *fields(
            [
                ("id", order["id"]),
                ("case", order.get("case")),
                ("provider", order.get("provider")),
                ("issued by", authority.get("name")),
                ("legal basis", basis.get("citation")),
                ("offence", offence.get("description")),
                ("data", document.get("data_categories")),
                ("emergency", order.get("emergency")),
                ("served", order.get("served_at")),
                ("received", order.get("received_at") or (served and "not yet")),
                ("due", order.get("due")),
                ("overdue", order.get("overdue")),
                ("clock paused", order.get("clock_paused")),
                ("may next", ", ".join(order.get("allowed_actions") or []) or "none"),
            ]
        ),
    ]
    targets = document.get("targets") or []
    if targets:
        lines.append("targets")
        lines += [
            f"{INDENT}{t.get('type')}  {shown(t.get('value'))}"
            + (f"  port {t['port']}" if t.get("port") else "")
            + (f"  at {t['time']}" if t.get("time") else "")
            for t in targets
        ]
    timeline = order.get("timeline") or []
    names = {entry["id"]: entry["name"] for entry in order.get("names") or []}
    if timeline:
        lines.append("timeline")
        for event in timeline:
            texts = event.get("texts") or {}
            said = "".join(f"\n{INDENT * 2}{k}: {shown(v)}" for k, v in sorted(texts.items()))
            lines.append(event_line(event, INDENT, names) + said)
    for notice in order.get("notices") or []:
        lines.append(f"notice  {shown(notice)}")
    for response in order.get("responses") or []:
        lines.append(f"response  {shown(response)}")
    return "\n".join(lines)
