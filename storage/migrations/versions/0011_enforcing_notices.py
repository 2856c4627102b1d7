"""Notices name their addressee: the order's provider, or the enforcing authority of an EU
order (Regulation (EU) 2023/1543 Art 8), which is sent the order when it is issued.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.add_column(
            sa.Column("addressee", sa.String(32), nullable=False, server_default="provider")
        )


def downgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.drop_column("addressee")
