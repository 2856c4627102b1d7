"""Evidence records, upload sessions and committed documents.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("case_ref", sa.String(200), nullable=False),
        sa.Column("exhibit", sa.String(200), nullable=False),
        sa.Column("storage_key", sa.String(200), nullable=True),
        sa.Column("ledger_index", sa.BigInteger, nullable=False, unique=True),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
    )
    op.create_index("ix_evidence_case_exhibit", "evidence", ["case_ref", "exhibit"])
    op.create_index("ix_evidence_storage_key", "evidence", ["storage_key"])
    op.create_table(
        "upload_sessions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("claimed_at", sa.String(32), nullable=True),
    )
    op.create_table(
        "evidence_documents",
        sa.Column("ledger_index", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("evidence_id", sa.String(32), nullable=False),
        sa.Column("salt", sa.LargeBinary(32), nullable=False),
        sa.Column("text", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_evidence_documents_evidence_id", "evidence_documents", ["evidence_id"])


def downgrade() -> None:
    for table in ("evidence_documents", "upload_sessions", "evidence"):
        op.drop_table(table)
