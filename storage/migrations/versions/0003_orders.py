"""Providers, orders, the texts order events commit to, and the notice outbox.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Migrations stand alone: the types are spelled out, not imported from the live schema.
Index64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTCDateTime = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "providers",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(1000), nullable=False, unique=True),
        sa.Column("record", sa.Text, nullable=False),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False, unique=True),
        sa.Column("provider_id", sa.String(32), nullable=False),
        sa.Column("case_ref", sa.String(1000), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("due", sa.String(32), nullable=True),
        sa.Column("salt", sa.LargeBinary(32), nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("note", sa.LargeBinary, nullable=True),
    )
    op.create_index("ix_orders_provider_seq", "orders", ["provider_id", "seq"])
    op.create_index("ix_orders_state_due", "orders", ["state", "due"])
    op.create_index("ix_orders_case", "orders", ["case_ref"])
    op.create_table(
        "order_texts",
        sa.Column("ledger_index", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("field", sa.String(32), primary_key=True),
        sa.Column("order_id", sa.String(32), nullable=False),
        sa.Column("salt", sa.LargeBinary(32), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index("ix_order_texts_order_id", "order_texts", ["order_id"])
    op.create_table(
        "notices",
        sa.Column("id", Index64, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(32), nullable=False),
        sa.Column("provider_id", sa.String(32), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("ledger_index", sa.BigInteger, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("note", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=True),
        sa.Column("delivered_at", UTCDateTime, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index("ix_notices_order_id", "notices", ["order_id"])
    op.create_index("ix_notices_state_next", "notices", ["state", "next_attempt_at"])


def downgrade() -> None:
    for table in ("notices", "order_texts", "orders", "providers"):
        op.drop_table(table)
