"""The text people read from ``custos evidence show|custody|event`` and ``orders show``:
sentences and aligned fields, never a Python dict, ``None`` or raw JSON."""

from __future__ import annotations

from typing import Any

from commands.render import act_text, custody_text, item_text, order_text, shown, table

ITEM: dict[str, Any] = {
    "id": "ev_0123456789abcdef",
    "kind": "digital",
    "case": "C-1",
    "exhibit": "HD-1",
    "description": "Seized laptop disk image",
    "size": 2112,
    "received_at": "2026-12-07T09:30:00.000000Z",
    "parent": None,
    "ledger_index": 9,
    "digests": {"sha256": "ab" * 32, "md5": "cd" * 16},
    "acquisition": {"tool": "ewfacquire 20140608", "acquired_by": "Alice"},
    "state": {"sealed": True, "on_hold": False, "checked_out_to": None, "disposed": False},
    "allowed_actions": ["evidence.noted", "evidence.unsealed"],
}

TRANSFER = {
    "index": 12,
    "time": "2026-12-07T10:00:00.000000Z",
    "type": "evidence.transferred",
    "actor": {"id": "pr_alice", "role": "examiner"},
    "data": {"from": "lab", "to": "vault", "location": "room 2", "reason": "storage"},
}


def assert_for_people(text: str) -> None:
    assert "None" not in text and "{'" not in text and '{"' not in text


def test_an_item_reads_as_fields_with_its_digests_and_acquisition() -> None:
    text = item_text(ITEM)

    assert text.splitlines()[0] == "C-1 / HD-1: Seized laptop disk image"
    assert "size          2,112 bytes" in text
    assert "derived from  -" in text
    assert "state         sealed" in text
    assert "may next      noted, unsealed" in text
    assert f"  sha256   {'ab' * 32}" in text
    assert "  acquired by  Alice" in text
    assert_for_people(text)


def test_a_custody_history_says_what_happened_in_words_with_its_details() -> None:
    text = custody_text([TRANSFER])

    first = text.splitlines()[0]
    assert first.startswith(
        "#12     2026-12-07T10:00:00.000000Z  Transferred [evidence.transferred], by"
    )
    assert "pr_alice (examiner)" in text
    assert text.splitlines()[1] == "  from lab; location room 2; reason storage; to vault"
    assert_for_people(text)


def test_an_act_says_what_was_recorded_and_what_the_item_may_do_next() -> None:
    text = act_text({**ITEM, "event": TRANSFER})

    assert text == (
        "recorded: Transferred [evidence.transferred], ledger index 12\n"
        "C-1 / HD-1 is now sealed; may next: noted, unsealed"
    )


def test_an_order_reads_with_its_deadline_targets_and_timeline() -> None:
    order = {
        "id": "ord_1",
        "reference": "PO-2026-0017",
        "kind": "production",
        "state": "pending_approval",
        "case": "CASE-1",
        "provider": "prv_1",
        "emergency": False,
        "served_at": None,
        "due": None,
        "overdue": False,
        "clock_paused": False,
        "allowed_actions": ["approve", "withdraw"],
        "document": {
            "issuing_authority": {"name": "Investigating judge, Lisbon"},
            "legal_basis": {"citation": "UN Convention against Cybercrime, Art 27(1)(a)"},
            "offence": {"description": "ransomware extortion"},
            "data_categories": ["subscriber"],
            "targets": [{"type": "email", "value": "suspect@example.com", "port": None}],
        },
        "timeline": [
            {**TRANSFER, "type": "order.drafted", "data": {}, "texts": {"reason": "first"}}
        ],
        "notices": [],
        "responses": [],
    }

    text = order_text(order)

    assert text.splitlines()[0] == "PO-2026-0017: production order, pending approval"
    assert "legal basis   UN Convention against Cybercrime, Art 27(1)(a)" in text
    assert "may next      approve, withdraw" in text
    assert "  email  suspect@example.com" in text
    assert (
        "Order drafted [order.drafted], by pr_alice (examiner)" in text
        and "    reason: first" in text
    )
    assert_for_people(text)


def test_control_characters_in_a_value_are_shown_as_escapes() -> None:
    assert shown("evil\u202etxt.exe\n") == "evil\\u202etxt.exe\\n"
    assert shown(None) == "-" and shown(True) == "yes" and shown(["a", "b"]) == "a, b"


def test_a_table_pads_each_column_to_its_widest_cell() -> None:
    assert table(["id", "name"], [["1", "alpha"], ["22", None]]) == ("id  name\n1   alpha\n22  -")
