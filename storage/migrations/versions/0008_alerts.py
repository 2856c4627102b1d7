"""E-mail alerts: the principals' addresses and the alerts' outbox.

Revision ID: 0008
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None

UTCDateTime = sa.String(32)
Index64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("principals") as batch:
        batch.add_column(sa.Column("email", sa.String(254), nullable=True))
    op.create_table(
        "alerts",
        sa.Column("id", Index64, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("once_key", sa.String(400), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=True),
        sa.Column("delivered_at", UTCDateTime, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.UniqueConstraint("once_key"),
    )
    op.create_index("ix_alerts_order_id", "alerts", ["order_id"])
    op.create_index("ix_alerts_state_next", "alerts", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("alerts")
    with op.batch_alter_table("principals") as batch:
        batch.drop_column("email")
