"""Browser sessions, single-use sign-in links and second factors for the pages.

Revision ID: 0005
Revises: 0004
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UTCDateTime = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("secret_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("principal_id", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_seen_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_sessions_principal_id", "sessions", ["principal_id"])
    op.create_index("ix_sessions_created_at", "sessions", ["created_at"])
    op.create_index("ix_sessions_last_seen_at", "sessions", ["last_seen_at"])
    op.create_table(
        "sign_in_links",
        sa.Column("secret_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("principal_id", sa.String(64), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=True),
    )
    # A principal's TOTP secret (RFC 6238) and the last time step it accepted (no replays).
    op.create_table(
        "second_factors",
        sa.Column("principal_id", sa.String(64), primary_key=True),
        sa.Column("totp_secret", sa.String(64), nullable=False),
        sa.Column("last_step", sa.BigInteger, nullable=True),
    )
    # One random secret per deployment signs the pages' cookie, shared by every worker.
    secret = op.create_table(
        "cookie_secret",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("secret", sa.LargeBinary(32), nullable=False),
    )
    op.bulk_insert(secret, [{"id": 1, "secret": secrets.token_bytes(32)}])


def downgrade() -> None:
    op.drop_table("cookie_secret")
    op.drop_table("second_factors")
    op.drop_table("sign_in_links")
    op.drop_table("sessions")
