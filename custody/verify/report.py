"""The custody report: an exhibit bundle's verification as one printable HTML page for a judge.

:func:`render_report` turns an :class:`ExhibitVerification` into a self-contained page: the
verdict first, then each exhibit with its digests, the acquisition its signed manifest
records, and its custody timeline (who, when, what, where, why, in the words of the register
of event types), with the findings and notes the bundle discloses marked as checked against
their commitments; the people and providers named, by the names checked against the ledger
(ids small beside them); the checklist and every numbered check of the verification with its
result, the completeness statement, the checkpoint and the fingerprints of the keys that
were trusted. It carries one inline style sheet with print rules for A4, no script, nothing
fetched from elsewhere and no link but to anchors in the page. Every value comes from the
bundle, which is untrusted input, so every value is HTML-escaped, its invisible characters
(bidi controls ...) shown as escapes (``custody.verify.escaping``).

The page is a function of the verification alone (no clock, no environment), so the same
bundle gives the same bytes. Imports only the standard library, the verifier's results and the
register of event types, so a court's verifier renders it (``--report``) without the service.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime

from custody.event_types import DISCLOSED_FIELDS, EVENT_TYPES, field_words
from custody.verify.escaping import escape_html
from custody.verify.results import (
    ExhibitVerification,
    ItemResult,
    PartyResult,
    StepResult,
    TimelineEvent,
)

__all__ = ["EVENT_LABELS", "event_label", "render_report"]

EVENT_LABELS: Mapping[str, str] = {name: t.label for name, t in EVENT_TYPES.items()}
"""Human labels of custody event types (custody.event_types); others read as their verb (see
:func:`event_label`)."""

# The manifest's acquisition record (custody.evidence.ACQUISITION_FIELDS) and the other
# fields an intake may sign, in the words and order the report gives them.
ACQUISITION_WORDS: Mapping[str, str] = {
    "tool": "Acquisition tool",
    "tool_version": "Tool version",
    "device": "Device",
    "serial": "Serial number",
    "acquired_at": "Acquired at",
    "acquired_by": "Acquired by",
    "location": "Location",
    "digests": "Digests at acquisition",
}
MANIFEST_WORDS: Mapping[str, str] = {
    "authority": "Authority (warrant, order)",
    "media_type": "Media type",
    "file_name": "File name",
    "received_at": "Received at",
    "created_by": "Received by",
}
# The manifest fields shown elsewhere on the page (the item's facts, its digests).
_SHOWN_ELSEWHERE = frozenset(
    {
        "id",
        "kind",
        "case",
        "exhibit",
        "parent",
        "size",
        "digests",
        "storage",
        "ledger_index",
        "description",
        "acquisition",
        "order",
    }
)
# Where and why an act happened, in the words of its event (see service/evidence.py's act
# schemas); every other field is shown as a detail of the act.
WHERE_FIELDS = ("location", "from", "to")
WHY_FIELDS = ("reason", "purpose", "authority")

DIGEST_LABELS: Mapping[str, str] = {
    "sha256": "SHA-256",
    "sha512": "SHA-512",
    "sha3_256": "SHA3-256",
    "sha1": "SHA-1",
    "md5": "MD5",
}
STATUS_LABELS: Mapping[str, str] = {"pass": "PASS", "fail": "FAIL", "skipped": "SKIPPED"}

_STYLE = """
@page { size: A4; margin: 16mm 15mm 18mm;
  @bottom-center { content: "Custody report \\2014  page " counter(page) " of " counter(pages);
    font: 8pt Georgia, serif; } }
* { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font: 10.5pt/1.45 Georgia, "Times New Roman", serif; color: #000; background: #fff;
  max-width: 48em; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 18pt; margin: 0 0 .2em; }
h2 { font-size: 13pt; border-bottom: 1px solid #444; margin: 1.4em 0 .5em; }
h3 { font-size: 11pt; margin: 1em 0 .3em; }
p { margin: .3em 0 .6em; }
dl.fields { display: grid; grid-template-columns: 11em 1fr; gap: .2em 1em; margin: 0; }
dt { font-weight: bold; }
dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; margin: .3em 0 .8em; }
th, td { border: 1px solid #666; padding: .25em .4em; text-align: left; vertical-align: top;
  overflow-wrap: anywhere; }
th { background: #eee; }
.mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 9pt;
  overflow-wrap: anywhere; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; }
.subtitle { margin: 0 0 1em; }
nav { font-size: 9.5pt; margin: .4em 0 1em; }
nav a { color: #000; }
.verdict { border: 4px solid #000; padding: .5em .8em; margin: 1em 0; }
.verdict .word { font: bold 22pt/1.1 Arial, Helvetica, sans-serif; letter-spacing: .05em;
  margin: 0 0 .2em; }
.verdict.ok { border-color: #17632f; background: #e9f6ec; }
.verdict.ok .word { color: #17632f; }
.verdict.bad { border-color: #a40000; background: #fbeaea; }
.verdict.bad .word { color: #a40000; }
.verdict ul { margin: .3em 0; padding-left: 1.2em; }
.status { font: bold 9pt Arial, Helvetica, sans-serif; border: 1px solid #000; padding: 0 .3em;
  white-space: nowrap; }
.status.pass { color: #17632f; border-color: #17632f; }
.status.fail { color: #fff; background: #a40000; border-color: #a40000; }
.status.skipped { color: #555; border-style: dashed; }
tr.fail td { font-weight: bold; }
table.steps th:nth-child(1) { width: 1.5em; }
table.steps th:nth-child(2) { width: 42%; }
table.steps th:nth-child(3) { width: 5.5em; }
.note { border-left: 4px solid #000; padding: .2em .8em; }
ol.timeline { list-style: none; margin: .6em 0; padding: 0; }
ol.timeline > li { display: grid; grid-template-columns: 9.5em 1fr; column-gap: 1.2em;
  break-inside: avoid; }
.when { text-align: right; font-size: 9.5pt; padding-top: .1em; }
.when span { display: block; }
.when .index { color: #444; font-size: 8.5pt; }
.what { position: relative; border-left: 2px solid #000; padding: 0 0 1em 1.2em; }
.what::before { content: ""; position: absolute; left: -8px; top: .3em; width: 10px;
  height: 10px; border: 2px solid #000; border-radius: 50%; background: #fff; }
li.failed .what::before { background: #a40000; border-color: #a40000; }
li.failed .what { border-left-color: #a40000; }
.what h4 { font-size: 11pt; margin: 0 0 .15em; }
.what h4 .mono { font-weight: normal; color: #444; font-size: 8.5pt; }
.what dl.fields { grid-template-columns: 5em 1fr; font-size: 9.5pt; }
.what .failure { color: #a40000; font-weight: bold; margin: .2em 0; }
ul.pairs { list-style: none; margin: 0; padding: 0; }
.name { font-weight: bold; }
.ident { font-size: 8pt; color: #444; }
.what p.about { margin: 0 0 .2em; font-size: 9pt; font-style: italic; }
.disclosed { border-left: 3px solid #17632f; padding: .2em .6em; margin: .2em 0; }
.checked { font-size: 8.5pt; }
ol.checklist { margin: .3em 0 .8em; padding-left: 1.6em; }
footer { margin-top: 2em; font-size: 9pt; border-top: 1px solid #444; padding-top: .4em; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  nav { display: none; }
  a { color: inherit; text-decoration: none; }
  .page { break-before: page; }
  h2, h3, h4, .lead { break-after: avoid; }
  tr, dl.fields, .verdict, .note { break-inside: avoid; }
}
"""


def _e(value: object) -> str:
    return escape_html(value)


def _mono(value: object) -> str:
    return f'<span class="mono">{_e(value)}</span>'


def _fields(pairs: Iterable[tuple[str, str]]) -> str:
    """A definition list; each value is HTML already escaped by the caller."""
    rows = "".join(f"<dt>{_e(name)}</dt><dd>{value}</dd>" for name, value in pairs)
    return f'<dl class="fields">{rows}</dl>'


def event_label(event_type: str) -> str:
    """The human label of an event type: ``evidence.transferred`` reads "Transferred"."""
    if event_type in EVENT_LABELS:
        return EVENT_LABELS[event_type]
    subject, _, verb = event_type.partition(".")
    words = (verb or subject).replace("_", " ")
    label = words[:1].upper() + words[1:]
    return label if subject == "evidence" or not verb else f"{subject.capitalize()}: {words}"


def _field_label(name: str) -> str:
    return field_words(name)


def _party(party_id: str, role: str, names: Mapping[str, PartyResult]) -> str:
    """Who acted, by the name checked against the ledger, the id small beside it: a
    provider's principal with its provider's name; an id the bundle does not name, alone."""
    party = names.get(party_id)
    ident = f'<span class="ident">{_mono(party_id)}{f" ({_e(role)})" if role else ""}</span>'
    if party is None:
        return f"{_mono(party_id)}{f' ({_e(role)})' if role else ''}"
    provider = names.get(party.provider) if party.provider else None
    name = party.name
    if provider is not None and provider.name:
        name = f"{name}, for {provider.name}" if name else f"{provider.name}'s account"
    if not name:
        return f"{_mono(party_id)}{f' ({_e(role)})' if role else ''}"
    return f'<span class="name">{_e(name)}</span> {ident}'


def _size(size: object) -> str:
    if not isinstance(size, int) or isinstance(size, bool):
        return "None recorded" if size is None else _e(size)
    mib = f" ({size / 2**20:,.1f} MiB)" if size >= 2**20 else ""
    return f"{size:,} bytes{mib}"


def _value(name: str, value: object) -> str:
    """One event field as escaped HTML: nested objects as ``key: value`` lines."""
    if name == "size":
        return _size(value)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        lines = "".join(
            f"<li>{_e(DIGEST_LABELS.get(str(k), k))}: {_value(str(k), v)}</li>"
            for k, v in value.items()
        )
        return f'<ul class="pairs">{lines}</ul>'
    if isinstance(value, str):
        return _mono(value) if len(value) >= 32 and _is_hex(value) else _e(value)
    if isinstance(value, int | float):
        return _e(value)
    return _mono(json.dumps(value, sort_keys=True, ensure_ascii=False))


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def _utc(value: str) -> datetime | None:
    """An RFC 3339 time with an offset, in UTC; None for anything else."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return None if parsed.utcoffset() is None else parsed.astimezone(UTC)


def _clock(parsed: datetime) -> str:
    return parsed.strftime("%H:%M:%S") + (f".{parsed:%f}" if parsed.microsecond else "")


def _time(value: str) -> str:
    """An RFC 3339 UTC time as a date line and a time line; anything else as given."""
    parsed = _utc(value)
    if parsed is None:
        return f"<span>{_e(value)}</span>"
    return f"<span>{parsed:%Y-%m-%d}</span><span>{_clock(parsed)} UTC</span>"


def _failed(steps: Iterable[StepResult]) -> list[StepResult]:
    """The checks that did not pass and were not skipped (an unknown status counts too)."""
    return [s for s in steps if s.status not in ("pass", "skipped")]


def _is_verified(verification: ExhibitVerification) -> bool:
    """VERIFIED only when the verifier says so and no check says otherwise."""
    steps = list(verification.steps)
    return bool(verification.ok) and bool(steps) and not _failed(steps)


def _where_failed(step: StepResult, many_items: bool) -> str:
    """Which item (when the bundle holds several) and which event a check is about."""
    parts = []
    if step.evidence_id is not None and many_items:
        parts.append(f"item {_mono(step.evidence_id)}")
    if step.event_index is not None:
        parts.append(f"event at ledger index {_e(step.event_index)}")
    return f" ({', '.join(parts)})" if parts else ""


def _verdict(verification: ExhibitVerification) -> str:
    steps = list(verification.steps)
    many_items = len(verification.items) > 1
    if _is_verified(verification):
        passed = sum(1 for s in steps if s.status == "pass")
        skipped = len(steps) - passed
        return (
            '<section class="verdict ok" id="verdict"><p class="word">VERIFIED</p>'
            f"<p>All {passed} checks that apply passed"
            f"{f', and {skipped} did not apply and were skipped' if skipped else ''}, "
            "using only the pinned keys listed under "
            '<a href="#keys">Keys and checkpoint</a>.</p></section>'
        )
    failed = [(n, s) for n, s in enumerate(steps, 1) if _failed([s])]
    if failed:
        reasons = "".join(
            f'<li><a href="#step-{n}">Check ({_e(s.number)})</a> failed: '
            f"{_e(s.title)}{_where_failed(s, many_items)}.<br>{_e(s.detail)}</li>"
            for n, s in failed
        )
    elif not steps:
        reasons = "<li>The verification recorded no checks.</li>"
    else:
        reasons = (
            "<li>The verifier did not confirm the exhibit, though no check is marked failed.</li>"
        )
    return (
        '<section class="verdict bad" id="verdict"><p class="word">NOT VERIFIED</p>'
        "<p>The chain of custody below is not established by this bundle:</p>"
        f"<ul>{reasons}</ul></section>"
    )


def _digests(digests: Mapping[str, str]) -> str:
    if not digests:
        return "<p>No digests: the item is physical or carries no bytes.</p>"
    order = list(DIGEST_LABELS)
    names = sorted(digests, key=lambda n: (order.index(n) if n in order else len(order), n))
    rows = "".join(
        f"<tr><td>{_e(DIGEST_LABELS.get(n, n))}</td><td>{_mono(digests[n])}</td></tr>"
        for n in names
    )
    return (
        "<table><thead><tr><th>Algorithm</th><th>Digest (hexadecimal)</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _event(
    event: TimelineEvent, failures: Sequence[StepResult], names: Mapping[str, PartyResult]
) -> str:
    data = dict(event.data)
    where = [(n, data.pop(n)) for n in WHERE_FIELDS if n in data]
    why = [(n, data.pop(n)) for n in WHY_FIELDS if n in data]

    def joined(pairs: list[tuple[str, object]]) -> str:
        return "<br>".join(f"{_e(_field_label(n))}: {_value(n, v)}" for n, v in pairs)

    rows = [("Who", _party(event.actor_id, event.actor_role, names))]
    if where:
        rows.append(("Where", joined(where)))
    if why:
        rows.append(("Why", joined(why)))
    if data:
        rows.append(("Details", joined(list(data.items()))))
    if event.disclosed is not None:
        what = "Findings" if DISCLOSED_FIELDS.get(event.type) == "findings" else "Note"
        rows.append(
            (
                what,
                '<span class="status pass">CHECKED</span> '
                '<span class="checked">matches the commitment in this event (check 10)</span>'
                f'<div class="disclosed text">{_e(event.disclosed)}</div>',
            )
        )
    about = _about(event.type)
    failure = "".join(
        f'<p class="failure">Check ({_e(s.number)}) failed here: {_e(s.detail)}</p>'
        for s in failures
    )
    marker = ' class="failed"' if failures else ""
    return (
        f"<li{marker}>"
        f'<div class="when">{_time(event.time)}'
        f'<span class="index">ledger index {_e(event.index)}</span></div>'
        f'<div class="what"><h4>{_e(event_label(event.type))} {_mono(event.type)}</h4>'
        f"{about}{failure}{_fields(rows)}</div></li>"
    )


def _about(event_type: str) -> str:
    """What an event of this type records, in the register's words (custody.event_types)."""
    registered = EVENT_TYPES.get(event_type)
    if registered is None:
        return ""
    return f'<p class="about">{_e(registered.doc[:1].upper() + registered.doc[1:])}.</p>'


def _read(value: str) -> str:
    """A field the verifier read from the bundle, or a plain statement that it could not."""
    return _e(value) if value else "<em>not readable from the bundle</em>"


def _exhibit_name(item: ItemResult) -> str:
    return _e(item.exhibit) if item.exhibit else _mono(item.evidence_id)


def _events(count: int) -> str:
    return f"{count} event{'s' if count != 1 else ''}"


def _timeline(
    events: Sequence[TimelineEvent],
    failures_at: Callable[[int], list[StepResult]],
    empty: str,
    names: Mapping[str, PartyResult],
) -> str:
    if not events:
        return f"<p>{_e(empty)}</p>"
    entries = "".join(_event(e, failures_at(e.index), names) for e in events)
    return f'<ol class="timeline">{entries}</ol>'


def _acquisition(item: ItemResult, names: Mapping[str, PartyResult]) -> str:
    """What the signed manifest records of how the item was acquired, and under what."""
    manifest = item.manifest
    if not manifest:
        return (
            "<h3>Acquisition</h3><p>Not shown: the signed manifest was not verified (check 6).</p>"
        )
    rows: list[tuple[str, str]] = []
    acquisition = manifest.get("acquisition")
    if isinstance(acquisition, Mapping):
        ordered = [k for k in ACQUISITION_WORDS if k in acquisition]
        ordered += sorted(str(k) for k in acquisition if k not in ACQUISITION_WORDS)
        rows += [
            (ACQUISITION_WORDS.get(k) or field_words(k), _manifest_value(k, acquisition[k]))
            for k in ordered
        ]
    for name, words in MANIFEST_WORDS.items():
        value = manifest.get(name)
        if value is None:
            continue
        if name == "created_by" and isinstance(value, str):
            rows.append((words, _party(value, "", names)))
        else:
            rows.append((words, _manifest_value(name, value)))
    for name in sorted(set(manifest) - _SHOWN_ELSEWHERE - set(MANIFEST_WORDS)):
        rows.append((field_words(name), _manifest_value(name, manifest[name])))
    lead = '<p class="lead">As the manifest signed at intake records it (verified by check 6).</p>'
    if not rows:
        return f"<h3>Acquisition</h3>{lead}<p>The manifest records no acquisition details.</p>"
    return f"<h3>Acquisition</h3>{lead}" + _fields(rows)


def _manifest_value(name: str, value: object) -> str:
    """A manifest field as escaped HTML; a time on one line, in UTC."""
    if name.endswith("_at") and isinstance(value, str):
        parsed = _utc(value)
        if parsed is not None:
            return _e(f"{parsed:%Y-%m-%d} {_clock(parsed)} UTC")
    return _value(name, value)


def _item(
    number: int, item: ItemResult, steps: Sequence[StepResult], names: Mapping[str, PartyResult]
) -> str:
    """One exhibit on a page of its own (the first follows the overview)."""
    failed = _failed(steps)

    def failures_at(index: int) -> list[StepResult]:
        return [
            s
            for s in failed
            if s.event_index == index and s.evidence_id in (None, item.evidence_id)
        ]

    events, order_events = list(item.events), list(item.order_events)
    fields = [
        ("Evidence ID", _mono(item.evidence_id)),
        ("Case", _read(item.case)),
        ("Exhibit", _read(item.exhibit)),
        ("Description", f'<span class="text">{_read(item.description)}</span>'),
    ]
    if item.kind:
        fields.append(("Kind", _e(item.kind)))
    fields.append(("Size", _size(item.size)))
    order = ""
    if item.order_id:
        fields.append(("Answers order", _mono(item.order_id)))
        order = (
            f"<h3>Timeline of order {_mono(item.order_id)} ({_events(len(order_events))})</h3>"
            '<p class="lead">The item is a service provider\'s response to this order; these '
            "are the order's events, from its drafting to the response.</p>"
            + _timeline(
                order_events, failures_at, "The bundle holds no events for the order.", names
            )
        )
    page_break = ' class="page"' if number > 1 else ""
    return (
        f'<section{page_break} id="item-{number}">'
        f"<h2>Exhibit {_exhibit_name(item)}</h2>"
        + _fields(fields)
        + "<h3>Digests</h3>"
        + _digests(item.digests)
        + _acquisition(item, names)
        + f"<h3>Custody timeline ({_events(len(events))})</h3>"
        '<p class="lead">Every act on the item, oldest first, as recorded in the custody '
        "ledger: who acted (principal and role), when (UTC), what was done, and where and why "
        "when the act recorded it.</p>"
        + _timeline(events, failures_at, "The bundle holds no events for this item.", names)
        + order
        + "</section>"
    )


def _parties(parties: Sequence[PartyResult]) -> str:
    """The people and providers the bundle names, as step (11) checked them."""
    if not parties:
        return ""
    rows = "".join(
        f"<tr><td>{_e(p.name) if p.name else '<em>no display name given</em>'}</td>"
        f"<td>{_mono(p.id)}</td>"
        f"<td>{_e(p.role or ('service provider' if p.kind == 'provider' else ''))}</td></tr>"
        for p in parties
    )
    return (
        '<section id="parties"><h2>People and providers</h2>'
        "<p>The events name who acted by an id; the bundle carries each one's record from "
        "the ledger, and the names below were checked against it (check 11): a person's "
        "display name against the salted commitment its ledger event carries, a provider's "
        "name as registered.</p>"
        "<table><thead><tr><th>Name</th><th>ID</th><th>Role</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _checklist(titles: Sequence[str]) -> str:
    """The numbered procedure itself, so a reader sees every check, done or not."""
    if not titles:
        return ""
    entries = "".join(f"<li>{_e(t)}</li>" for t in titles)
    return f'<h3>The checklist</h3><ol class="checklist">{entries}</ol>'


def _steps(steps: Sequence[StepResult], many_items: bool) -> str:
    rows = "".join(
        f'<tr class="{_e(s.status)}" id="step-{n}"><td>{_e(s.number)}</td>'
        f"<td>{_e(s.title)}{_where_failed(s, many_items)}</td>"
        f'<td><span class="status {_e(s.status)}">'
        f"{_e(STATUS_LABELS.get(s.status, s.status.upper()))}</span></td>"
        f'<td class="text">{_e(s.detail)}</td></tr>'
        for n, s in enumerate(steps, 1)
    )
    return (
        '<section class="page" id="steps"><h2>Verification, step by step</h2>'
        "<p>The verifier follows one numbered checklist (docs/bundle.md); an expert witness can "
        'repeat each check with <span class="mono">python -m custody.verify</span>. A check '
        "is skipped only when it does not apply, and says why.</p>"
        + _checklist(_titles(steps))
        + "<h3>Results</h3>"
        '<table class="steps"><thead><tr><th>#</th><th>Check</th><th>Result</th>'
        "<th>Detail</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _keys(verification: ExhibitVerification) -> str:
    fingerprints = "".join(f"<li>{_mono(k)}</li>" for k in verification.key_fingerprints)
    return (
        '<section id="keys"><h2>Keys and checkpoint</h2>'
        "<p>Signatures were checked only against keys pinned by whoever ran the verifier, "
        "never against a key found in the bundle. These pinned keys verified the bundle's "
        "signatures (key name, then key ID: the first 4 bytes of SHA-256 over the key name, a "
        "newline, 0x01 and the public key). Compare them with the key the operator published, "
        "obtained separately and beforehand.</p>"
        f"<ul>{fingerprints or '<li>None</li>'}</ul>"
        "<h3>Checkpoint</h3><p>The signed tree head of the custody ledger that every proof "
        "in the bundle is checked against.</p>"
        + _fields(
            [
                ("Log origin", _mono(verification.origin)),
                ("Tree size", f"{_e(verification.checkpoint_size)} entries"),
                ("Root hash", _mono(verification.checkpoint_root)),
            ]
        )
        + "</section>"
    )


def _titles(steps: Sequence[StepResult]) -> list[str]:
    """Each numbered check's title, in checklist order, from the results."""
    titles = {step.number: step.title for step in steps}
    return [titles[n] for n in sorted(titles)]


def render_report(verification: ExhibitVerification) -> str:
    """The custody report of one verified (or refused) exhibit bundle, as an HTML page."""
    steps = list(verification.steps)
    items = list(verification.items)
    names = verification.names
    if len(items) == 1:
        title = f"Custody report: exhibit {_e(items[0].exhibit or items[0].evidence_id)}"
    else:
        title = f"Custody report: {len(items)} exhibits"
    overview = "".join(
        f'<tr><td><a href="#item-{n}">{_exhibit_name(i)}</a></td><td>{_read(i.case)}</td>'
        f"<td>{_mono(i.evidence_id)}</td><td>{_read(i.description)}</td></tr>"
        for n, i in enumerate(items, 1)
    )
    nav = " · ".join(
        [
            '<a href="#verdict">Verdict</a>',
            *(
                f'<a href="#item-{n}">Exhibit {_exhibit_name(i)}</a>'
                for n, i in enumerate(items, 1)
            ),
            *(['<a href="#parties">People and providers</a>'] if verification.parties else []),
            '<a href="#steps">Verification</a>',
            '<a href="#completeness">Completeness</a>',
            '<a href="#keys">Keys and checkpoint</a>',
        ]
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{title}</h1>"
        '<p class="subtitle">The chain of custody of the exhibits below, checked offline '
        f"against the custody ledger {_mono(verification.origin)} at tree size "
        f"{_e(verification.checkpoint_size)}.</p><nav>{nav}</nav></header>"
        + _verdict(verification)
        + '<section id="exhibits"><h2>Exhibits</h2>'
        "<table><thead><tr><th>Exhibit</th><th>Case</th><th>Evidence ID</th>"
        f"<th>Description</th></tr></thead><tbody>{overview}</tbody></table></section>"
        + "".join(_item(n, i, steps, names) for n, i in enumerate(items, 1))
        + _parties(verification.parties)
        + _steps(steps, len(items) > 1)
        + '<section id="completeness"><h2>Completeness</h2>'
        f'<p class="note text">{_e(verification.completeness_note)}</p></section>'
        + _keys(verification)
        + "<footer>This page renders the result of verifying the exhibit bundle; the bundle "
        "itself is the evidence of record. Anyone can repeat the verification with "
        '<span class="mono">python -m custody.verify exhibit.zip --key KEY</span> and the '
        "key above.</footer></body></html>\n"
    )
