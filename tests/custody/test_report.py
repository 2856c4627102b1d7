"""The custody report: a self-contained printable page of an exhibit's verification."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser

from custody.event_types import EVENT_TYPES, FIELD_WORDS
from custody.verify.report import event_label, render_report
from custody.verify.results import (
    ExhibitVerification,
    ItemResult,
    PartyResult,
    StepResult,
    TimelineEvent,
)

EVIDENCE_ID = "ev_0123456789abcdef"
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
MD5 = "098f6bcd4621d373cade4e832627b4f6"
ROOT = "qUNAXRnEbq6y0Oz9RNPsX3uR4Qwc0rpLjfnhTvWZcjQ="
FINGERPRINT = "test.custos.invalid/ledger+5c5b3a1e+AeMmtqpbl7hTd9Od1Tg8cuD+UxVQ/iF5CdnM4rIy4lOe"
COMPLETENESS = (
    "Completeness after ledger index 12 rests on the signed head statement: the service "
    "states that the item had 3 events as of the checkpoint."
)
CHECKS = (
    "the archive is well formed and bounded",
    "the checkpoint is signed by a pinned key",
    "every event's inclusion proof holds",
    "the events belong to the item and their prev chain is unbroken",
    "the head statement is signed and matches the last event",
    "the manifest is signed and its digests equal the ingest event's",
    "the artifact bytes match every digest",
    "the checkpoint is consistent with the court's earlier one",
    "the order document and the receipt",
)


def sample_verification(**changes: object) -> ExhibitVerification:
    """A sound verification of one item with three custody events (built by hand)."""
    events = [
        TimelineEvent(
            index=3,
            type="evidence.ingested",
            time="2026-11-28T12:00:00.000000Z",
            actor_id="pr_examiner01",
            actor_role="examiner",
            data={
                "case": "CASE-2026-17",
                "exhibit": "HD-1",
                "kind": "digital",
                "parent": None,
                "size": 4,
                "digests": {"sha256": SHA256, "md5": MD5},
            },
        ),
        TimelineEvent(
            index=7,
            type="evidence.transferred",
            time="2026-11-29T09:30:15.250000Z",
            actor_id="pr_examiner01",
            actor_role="examiner",
            data={
                "from": "Lab A evidence room",
                "to": "Officer Byrne",
                "location": "Dublin forensic lab",
                "reason": "transport to court",
            },
        ),
        TimelineEvent(
            index=12,
            type="evidence.sealed",
            time="2026-11-30T16:00:00.000000Z",
            actor_id="pr_officer02",
            actor_role="examiner",
            data={"seal": "S-0042"},
        ),
    ]
    item = ItemResult(
        evidence_id=EVIDENCE_ID,
        case="CASE-2026-17",
        exhibit="HD-1",
        description="Seized laptop disk image",
        size=4,
        digests={"sha256": SHA256, "md5": MD5},
        events=events,
        order_id=None,
        kind="digital",
    )
    steps = [
        StepResult(
            number=n,
            title=title,
            status="skipped" if n in (8, 9) else "pass",
            detail=f"detail of check {n}" if n not in (8, 9) else f"not applicable: reason {n}",
            evidence_id=None if n < 3 else EVIDENCE_ID,
            event_index=None,
        )
        for n, title in enumerate(CHECKS, 1)
    ]
    values: dict[str, object] = {
        "ok": True,
        "steps": steps,
        "items": [item],
        "origin": "test.custos.invalid/ledger",
        "checkpoint_size": 13,
        "checkpoint_root": ROOT,
        "key_fingerprints": [FINGERPRINT],
        "completeness_note": COMPLETENESS,
    }
    values.update(changes)
    return ExhibitVerification(**values)  # type: ignore[arg-type]


def failing_verification() -> ExhibitVerification:
    """Check (4) fails at the event at ledger index 7."""
    sound = sample_verification()
    steps = [
        dataclasses.replace(
            s, status="fail", detail="event 7's prev is not event 3's leaf hash", event_index=7
        )
        if s.number == 4
        else s
        for s in sound.steps
    ]
    return dataclasses.replace(sound, ok=False, steps=steps)


class Page(HTMLParser):
    """A page's text (whole and per section id), tags, ids, references and table rows."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.text: list[str] = []
        self.sections: dict[str, list[str]] = {}
        self.tags: set[str] = set()
        self.ids: set[str] = set()
        self.references: list[str] = []
        self.rows: dict[str, list[str]] = {}
        self._open: list[str | None] = []
        self._row: str | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.add(tag)
        if attributes.get("id"):
            self.ids.add(str(attributes["id"]))
        self.references += [str(v) for n, v in attrs if n in ("src", "href", "action", "srcset")]
        if tag == "section":
            self._open.append(attributes.get("id"))
        if tag == "tr":
            self._row = attributes.get("id")
            if self._row:
                self.rows[self._row] = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "section" and self._open:
            self._open.pop()
        if tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for section in self._open:
            if section:
                self.sections.setdefault(section, []).append(data)
        if self._row:
            self.rows[self._row].append(data)

    def section(self, section_id: str) -> str:
        return " ".join(" ".join(self.sections.get(section_id, [])).split())

    def row(self, row_id: str) -> str:
        return " ".join(" ".join(self.rows[row_id]).split())

    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def test_a_sound_verification_shows_verified_the_exhibit_its_digests_and_its_keys() -> None:
    page = Page(render_report(sample_verification()))

    verdict = page.section("verdict")
    text = page.all_text()
    assert verdict.startswith("VERIFIED")
    for expected in (
        EVIDENCE_ID,
        "CASE-2026-17",
        "HD-1",
        "Seized laptop disk image",
        SHA256,
        MD5,
        FINGERPRINT,
        ROOT,
        "test.custos.invalid/ledger",
        COMPLETENESS,
    ):
        assert expected in text
    assert "13 entries" in page.section("keys")


def test_every_step_appears_with_its_status_and_detail() -> None:
    verification = sample_verification()

    page = Page(render_report(verification))

    for n, step in enumerate(verification.steps, 1):
        row = page.row(f"step-{n}")
        assert row.startswith(f"{step.number} {step.title}")
        assert ("SKIPPED" if step.number in (8, 9) else "PASS") in row
        assert step.detail in row


def test_a_failing_verification_shows_not_verified_and_names_the_failing_step() -> None:
    page = Page(render_report(failing_verification()))

    verdict = page.section("verdict")
    assert verdict.startswith("NOT VERIFIED")
    assert "Check (4) failed" in verdict
    assert CHECKS[3] in verdict
    assert "event 7's prev is not event 3's leaf hash" in verdict
    assert "ledger index 7" in verdict
    assert "FAIL" in page.row("step-4")
    assert "#step-4" in page.references
    assert "Check (4) failed here" in page.section("item-1")


def test_a_verification_claiming_ok_with_a_failed_step_is_not_verified() -> None:
    contradictory = dataclasses.replace(failing_verification(), ok=True)

    assert Page(render_report(contradictory)).section("verdict").startswith("NOT VERIFIED")


def test_a_verification_without_steps_is_not_verified() -> None:
    empty = sample_verification(steps=[])

    assert Page(render_report(empty)).section("verdict").startswith("NOT VERIFIED")


def test_every_value_from_the_bundle_is_escaped() -> None:
    script = '<script>alert("x")</script>'
    hostile = sample_verification(
        origin='evil.example/<img src="http://evil.example/x.png">',
        key_fingerprints=["<b>key</b>"],
        completeness_note="<iframe src=https://evil.example/>",
    )
    item = dataclasses.replace(
        hostile.items[0],
        description=f"Laptop {script} & more",
        exhibit="<a href='https://evil.example/'>HD-1</a>",
        events=[
            dataclasses.replace(
                hostile.items[0].events[1],
                actor_id="<svg onload=x>",
                data={"location": '<link rel="stylesheet" href="https://evil.example/s.css">'},
            )
        ],
    )
    html = render_report(dataclasses.replace(hostile, items=[item]))

    page = Page(html)
    assert "<script>" not in html
    assert "Laptop &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in html
    assert f"Laptop {script} & more" in page.all_text()
    assert page.tags.isdisjoint({"script", "img", "link", "iframe", "object", "svg", "b"})
    assert all(reference.startswith("#") for reference in page.references)


def test_the_page_fetches_nothing_and_links_only_to_anchors_in_the_page() -> None:
    html = render_report(failing_verification())

    page = Page(html)
    assert page.tags.isdisjoint({"script", "img", "link", "iframe", "object", "embed", "base"})
    assert page.references, "the page links to its own sections"
    for reference in page.references:
        assert reference.startswith("#") and reference[1:] in page.ids
    lowered = html.lower()
    for fetching in ("http:", "https:", "url(", "@import", "//", "javascript:"):
        assert fetching not in lowered.replace("<!doctype html>", "")


def test_the_timeline_says_who_when_what_where_and_why() -> None:
    page = Page(render_report(sample_verification()))

    timeline = page.section("item-1")
    assert "Custody timeline (3 events)" in timeline
    transfer = timeline[timeline.index("2026-11-29") : timeline.index("2026-11-30")]
    for expected in (
        "09:30:15.250000 UTC",
        "ledger index 7",
        "Transferred",
        "pr_examiner01 (examiner)",
        "Location: Dublin forensic lab",
        "From: Lab A evidence room",
        "To: Officer Byrne",
        "Reason: transport to court",
    ):
        assert expected in transfer
    assert timeline.index("Ingested") < timeline.index("Transferred") < timeline.index("Sealed")
    assert "Seal: S-0042" in timeline


def test_each_exhibit_of_a_bundle_gets_its_own_section() -> None:
    sound = sample_verification()
    second = dataclasses.replace(
        sound.items[0], evidence_id="ev_fedcba9876543210", exhibit="HD-2", events=[]
    )

    page = Page(render_report(dataclasses.replace(sound, items=[*sound.items, second])))

    assert "ev_fedcba9876543210" in page.section("item-2")
    assert "HD-2" in page.section("exhibits")
    assert "no events" in page.section("item-2")


def test_a_providers_response_shows_the_timeline_of_its_order() -> None:
    sound = sample_verification()
    order_events = [
        TimelineEvent(
            index=1,
            type="order.served",
            time="2026-11-20T08:00:00Z",
            actor_id="pr_judge01",
            actor_role="approver",
            data={"order": "ord_0123456789abcdef", "state": "served"},
        ),
        TimelineEvent(
            index=2,
            type="order.responded",
            time="2026-11-27T17:45:00Z",
            actor_id="pr_isp01",
            actor_role="provider",
            data={"order": "ord_0123456789abcdef", "evidence": EVIDENCE_ID},
        ),
    ]
    response = dataclasses.replace(
        sound.items[0], order_id="ord_0123456789abcdef", order_events=order_events
    )

    page = Page(render_report(dataclasses.replace(sound, items=[response])))

    item = page.section("item-1")
    assert "Timeline of order ord_0123456789abcdef (2 events)" in item
    assert "Order served on the provider" in item
    assert "Provider's response received" in item
    assert "pr_isp01 (provider)" in item


def test_fields_the_verifier_could_not_read_say_so() -> None:
    sound = sample_verification()
    unread = dataclasses.replace(sound.items[0], case="", exhibit="", description="")

    page = Page(render_report(dataclasses.replace(sound, ok=False, items=[unread])))

    assert "Custody report: exhibit ev_0123456789abcdef" in page.all_text()
    assert page.section("item-1").count("not readable from the bundle") == 3


def test_event_types_read_as_words() -> None:
    assert event_label("evidence.transferred") == "Transferred"
    assert event_label("evidence.checked_out") == "Checked out"
    assert event_label("key.rotated") == "Signing key rotated"


def test_every_registered_event_type_has_its_label_from_the_register() -> None:
    for name, registered in EVENT_TYPES.items():
        assert event_label(name) == registered.label


def test_a_type_the_register_lacks_reads_as_its_verb() -> None:
    """A bundle is untrusted input: a type this version does not know still reads as words."""
    assert event_label("evidence.relabelled") == "Relabelled"
    assert event_label("case.merged") == "Case: merged"


def test_the_same_verification_gives_the_same_page() -> None:
    assert render_report(sample_verification()) == render_report(sample_verification())


def named_verification() -> ExhibitVerification:
    """The sample, with its people named (check 11), its note disclosed (check 10) and its
    signed manifest read (check 6)."""
    sound = sample_verification()
    (item,) = sound.items
    note = TimelineEvent(
        index=13,
        type="evidence.noted",
        time="2026-12-01T10:00:00.000000Z",
        actor_id="pr_desk03",
        actor_role="provider",
        data={"text_commitment": "ab" * 32},
        disclosed="Seal intact <b>on arrival</b>",
    )
    manifest = {
        "id": EVIDENCE_ID,
        "authority": "Warrant 17/2026",
        "media_type": "application/octet-stream",
        "received_at": "2026-11-28T12:00:00.000000Z",
        "created_by": "pr_examiner01",
        "acquisition": {"tool": "FTK Imager", "tool_version": "4.7", "acquired_by": "DS Byrne"},
    }
    item = dataclasses.replace(item, events=[*item.events, note], manifest=manifest)
    parties = [
        PartyResult("pr_examiner01", "principal", "Dr Ana Ruiz", "examiner"),
        PartyResult("pr_desk03", "principal", "Dana", "provider", provider="prv_isp"),
        PartyResult("prv_isp", "provider", "Own ISP"),
    ]
    return dataclasses.replace(sound, items=[item], parties=parties)


def test_who_acted_reads_as_a_name_with_the_id_small_beside_it() -> None:
    page = Page(render_report(named_verification()))

    timeline = page.section("item-1")
    assert "Dr Ana Ruiz pr_examiner01 (examiner)" in timeline
    assert "Dana, for Own ISP pr_desk03 (provider)" in timeline
    # a principal the bundle does not name is shown by its id alone
    assert "pr_officer02 (examiner)" in timeline
    people = page.section("parties")
    assert "Dr Ana Ruiz pr_examiner01 examiner" in people and "Own ISP prv_isp" in people


def test_a_disclosed_note_is_shown_escaped_and_marked_as_checked() -> None:
    html = render_report(named_verification())

    assert "Seal intact &lt;b&gt;on arrival&lt;/b&gt;" in html
    text = Page(html).section("item-1")
    assert "Note CHECKED matches the commitment in this event (check 10)" in text


def test_the_acquisition_the_signed_manifest_records_is_shown_per_item() -> None:
    text = Page(render_report(named_verification())).section("item-1")

    for expected in (
        "Acquisition As the manifest signed at intake records it (verified by check 6).",
        "Acquisition tool FTK Imager",
        "Tool version 4.7",
        "Acquired by DS Byrne",
        "Authority (warrant, order) Warrant 17/2026",
        "Received at 2026-11-28 12:00:00 UTC",
        "Received by Dr Ana Ruiz pr_examiner01",
    ):
        assert expected in text


def test_without_a_verified_manifest_the_acquisition_says_it_is_not_shown() -> None:
    text = Page(render_report(sample_verification())).section("item-1")

    assert "Acquisition Not shown: the signed manifest was not verified (check 6)." in text


def test_each_event_says_what_it_records_in_the_register_s_words() -> None:
    text = Page(render_report(sample_verification())).section("item-1")

    assert "Transferred evidence.transferred Custody passed from one holder to another." in text


def test_every_data_field_of_every_event_type_has_words() -> None:
    missing = {
        f"{t.type}.{name}"
        for t in EVENT_TYPES.values()
        for name in t.data
        if name not in FIELD_WORDS
    }
    assert not missing


def test_the_report_lists_the_checklist_it_followed() -> None:
    text = Page(render_report(sample_verification())).section("steps")

    assert "The checklist " + " ".join(CHECKS) in text
