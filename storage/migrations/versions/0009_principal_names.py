"""Display names of principals: the name in force, and each name with its commitment's salt.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("principals") as batch:
        batch.add_column(sa.Column("display_name", sa.String(200), nullable=True))
    op.create_table(
        "principal_names",
        sa.Column("ledger_index", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("principal_id", sa.String(64), nullable=False),
        sa.Column("salt", sa.LargeBinary(32), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
    )
    op.create_index("ix_principal_names_principal_id", "principal_names", ["principal_id"])


def downgrade() -> None:
    op.drop_table("principal_names")
    with op.batch_alter_table("principals") as batch:
        batch.drop_column("display_name")
