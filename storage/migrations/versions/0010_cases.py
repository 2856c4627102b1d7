"""Cases as records: cases, their members and the courts' grants.

Every item and order named its case by a string only. Each distinct string becomes a case
with that reference (its title the reference too, its authority "migrated"), opened when its
first item or order was; the principals who took in its items or drafted its orders, where
they may be members of a case (examiners, authorities, approvers, admins), become its members,
the first of them its lead. Courts, which read every item until now, are granted nothing:
a member grants them what a proceeding needs (README, "Upgrading to cases"). A migration
cannot sign ledger events: ``custos init`` records these cases' events after migrating
(``custody.cases.Cases.record_migrated``).

Revision ID: 0010
Revises: 0009
"""

import json
import secrets
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UTCDateTime = sa.String(32)
MEMBER_ROLES = ("examiner", "authority", "approver", "admin")


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("authority", sa.String(200), nullable=False),
        sa.Column("title_salt", sa.LargeBinary(32), nullable=False),
        sa.Column("opened_at", sa.String(32), nullable=False),
        sa.Column("opened_by", sa.String(64), nullable=False),
        sa.Column("closed_at", sa.String(32), nullable=True),
        sa.UniqueConstraint("reference"),
    )
    op.create_table(
        "case_members",
        sa.Column("case_id", sa.String(32), primary_key=True),
        sa.Column("principal_id", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("added_at", sa.String(32), nullable=False),
    )
    op.create_index("ix_case_members_principal", "case_members", ["principal_id"])
    op.create_table(
        "case_grants",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("court_id", sa.String(64), nullable=False),
        sa.Column("proceeding", sa.String(200), nullable=False),
        sa.Column("ends_at", UTCDateTime, nullable=False),
        sa.Column("granted_at", sa.String(32), nullable=False),
        sa.Column("exhibits", sa.Text, nullable=True),
    )
    op.create_index("ix_case_grants_case_id", "case_grants", ["case_id"])
    op.create_index("ix_case_grants_court_id", "case_grants", ["court_id"])
    # A case's items in ledger order: how a reader's list is read, a case at a time.
    op.create_index("ix_evidence_case_ledger", "evidence", ["case_ref", "ledger_index"])
    _cases_from_case_strings()


def _cases_from_case_strings() -> None:
    """A case for each case string of the items and orders, with their creators as members."""
    bind = op.get_bind()
    roles: dict[str, str] = {
        str(row.id): str(row.role)
        for row in bind.execute(sa.text("SELECT id, role FROM principals"))
    }
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # case string -> [(when, principal id)] in ledger order
    found: dict[str, list[tuple[int, str, str]]] = {}
    for case_ref, index, record in bind.execute(
        sa.text("SELECT case_ref, ledger_index, record FROM evidence")
    ):
        data: dict[str, Any] = json.loads(record)
        found.setdefault(case_ref, []).append((index, data["received_at"], data["created_by"]))
    for case_ref, seq, record in bind.execute(sa.text("SELECT case_ref, seq, record FROM orders")):
        data = json.loads(record)
        drafted_by = data.get("drafted_by")
        drafter = drafted_by.get("id") if isinstance(drafted_by, dict) else drafted_by
        drafted_at = str(data.get("drafted_at") or now)
        found.setdefault(case_ref, []).append((seq, drafted_at, str(drafter or "")))
    for reference, creators in sorted(found.items()):
        creators.sort()
        members: list[str] = []
        for _, _, principal_id in creators:
            if roles.get(principal_id) in MEMBER_ROLES and principal_id not in members:
                members.append(principal_id)
        case_id = "cs_" + secrets.token_hex(8)
        opened_at = creators[0][1]
        bind.execute(
            sa.text(
                "INSERT INTO cases (id, reference, title, authority, title_salt, opened_at,"
                " opened_by) VALUES (:id, :reference, :title, :authority, :salt, :at, :by)"
            ),
            {
                "id": case_id,
                "reference": reference,
                "title": reference,
                "authority": "migrated",
                "salt": secrets.token_bytes(32),
                "at": opened_at,
                "by": members[0] if members else "custos",
            },
        )
        for number, principal_id in enumerate(members):
            bind.execute(
                sa.text(
                    "INSERT INTO case_members (case_id, principal_id, role, added_at)"
                    " VALUES (:case, :principal, :role, :at)"
                ),
                {
                    "case": case_id,
                    "principal": principal_id,
                    "role": "lead" if number == 0 else "member",
                    "at": now,
                },
            )


def downgrade() -> None:
    op.drop_index("ix_evidence_case_ledger", "evidence")
    for table in ("case_grants", "case_members", "cases"):
        op.drop_table(table)
