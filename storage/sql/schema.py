"""Table definitions. The schema itself is created and changed by the Alembic migrations in
``storage/migrations``; these definitions must match the newest migration (a test checks)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Dialect,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
)

metadata = MetaData()

# SQLite makes an INTEGER PRIMARY KEY the rowid: the ledger index is the B-tree key itself.
Index64 = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes, stored as RFC 3339 text so every backend reads them back
    identically and aware."""

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def process_result_value(self, value: str | None, dialect: Dialect) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)


ledger_head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("size", BigInteger, nullable=False),
    # How many leaves ledger_leaf_index covers: it is caught up when a lookup needs it, off
    # the append path, because a random-keyed index would cost every append.
    Column("leaf_indexed", BigInteger, nullable=False),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("idx", Index64, primary_key=True, autoincrement=False),
    Column("subject", String(300), nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("leaf", LargeBinary, nullable=False),
    # The same subject's previous event: a subject's history is a chain walked from its head.
    Column("prev_idx", BigInteger, nullable=True),
)

# Leaf hash (its first 8 bytes as a signed integer) -> index, for proofs by leaf hash.
ledger_leaf_index = Table(
    "ledger_leaf_index",
    metadata,
    Column("hash8", BigInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    sqlite_with_rowid=False,
)

# The last event of each subject, so that placing an event finds its ``prev`` by primary key.
# Derived from ledger_entries (``custos audit`` checks it), kept for speed.
ledger_subjects = Table(
    "ledger_subjects",
    metadata,
    Column("subject", String(300), primary_key=True),
    Column("last_idx", BigInteger, nullable=False),
    Column("last_hash", LargeBinary(32), nullable=False),
    sqlite_with_rowid=False,
)

# A stored node (level, idx) is the hash of the complete subtree over leaves
# [idx << level, (idx + 1) << level), for levels 1 and up; level 0, the leaf hashes, is
# ledger_entries.leaf_hash.
ledger_nodes = Table(
    "ledger_nodes",
    metadata,
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
    sqlite_with_rowid=False,
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", LargeBinary, nullable=False),
    Column("signed_at", UTCDateTime, nullable=False),
)

principals = Table(
    "principals",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("role", String(32), nullable=False),
    Column("provider_id", String(64), nullable=True),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    # Where the principal gets e-mail alerts, if anywhere (migration 0008).
    Column("email", String(254), nullable=True),
    # The display name in force: the last of principal_names (migration 0009).
    Column("display_name", String(200), nullable=True),
)

# Each display name a principal was given, with the salt of the commitment its event
# (principal.created or principal.named, at ledger_index) carries.
principal_names = Table(
    "principal_names",
    metadata,
    Column("ledger_index", BigInteger, primary_key=True, autoincrement=False),
    Column("principal_id", String(64), nullable=False, index=True),
    Column("salt", LargeBinary(32), nullable=False),
    Column("name", Text, nullable=False),
)

evidence = Table(
    "evidence",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("case_ref", String(200), nullable=False),
    Column("exhibit", String(200), nullable=False),
    Column("storage_key", String(200), nullable=True),
    Column("ledger_index", BigInteger, nullable=False, unique=True),
    Column("record", Text, nullable=False),
    Column("state", Text, nullable=False),
    Index("ix_evidence_case_exhibit", "case_ref", "exhibit"),
    Index("ix_evidence_case_ledger", "case_ref", "ledger_index"),
    Index("ix_evidence_storage_key", "storage_key"),
)

# Cases (custody.cases): the records items and orders belong to, by ``reference`` (the
# ``case_ref`` of evidence and orders), their members and the courts' grants (migration 0010).
cases = Table(
    "cases",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("reference", String(200), nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("authority", String(200), nullable=False),
    Column("title_salt", LargeBinary(32), nullable=False),
    Column("opened_at", String(32), nullable=False),
    Column("opened_by", String(64), nullable=False),
    Column("closed_at", String(32), nullable=True),
)

case_members = Table(
    "case_members",
    metadata,
    Column("case_id", String(32), primary_key=True),
    Column("principal_id", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("added_at", String(32), nullable=False),
    Index("ix_case_members_principal", "principal_id"),
)

case_grants = Table(
    "case_grants",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("case_id", String(32), nullable=False, index=True),
    Column("court_id", String(64), nullable=False, index=True),
    Column("proceeding", String(200), nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("granted_at", String(32), nullable=False),
    # The evidence ids granted, as a JSON list; null grants the whole case.
    Column("exhibits", Text, nullable=True),
)

upload_sessions = Table(
    "upload_sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("metadata", Text, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("claimed_at", String(32), nullable=True),
)

evidence_documents = Table(
    "evidence_documents",
    metadata,
    Column("ledger_index", BigInteger, primary_key=True, autoincrement=False),
    Column("evidence_id", String(32), nullable=False, index=True),
    Column("salt", LargeBinary(32), nullable=False),
    Column("text", LargeBinary, nullable=False),
)

providers = Table(
    "providers",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(1000), nullable=False, unique=True),
    Column("record", Text, nullable=False),
)

# An order's document and lifecycle are in ``record`` (JSON); the columns beside it are what
# lists filter on. ``seq`` is the ledger index of its ``order.drafted`` event: the list order
# and cursor. ``due`` is the running deadline as RFC 3339 UTC text (it sorts as time), null
# before service and while the clock is stopped.
orders = Table(
    "orders",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("seq", BigInteger, nullable=False, unique=True),
    Column("provider_id", String(32), nullable=False),
    Column("case_ref", String(1000), nullable=False),
    Column("state", String(32), nullable=False),
    Column("due", String(32), nullable=True),
    Column("salt", LargeBinary(32), nullable=False),
    Column("record", Text, nullable=False),
    Column("note", LargeBinary, nullable=True),
    Index("ix_orders_provider_seq", "provider_id", "seq"),
    Index("ix_orders_state_due", "state", "due"),
    Index("ix_orders_case", "case_ref"),
)

# Free text an order event commits to (objection details, questions, answers, reasons).
order_texts = Table(
    "order_texts",
    metadata,
    Column("ledger_index", BigInteger, primary_key=True, autoincrement=False),
    Column("field", String(32), primary_key=True),
    Column("order_id", String(32), nullable=False, index=True),
    Column("salt", LargeBinary(32), nullable=False),
    Column("text", Text, nullable=False),
)

# The outbox of notices to providers, written with the event each announces.
notices = Table(
    "notices",
    metadata,
    Column("id", Index64, primary_key=True, autoincrement=True),
    Column("order_id", String(32), nullable=False, index=True),
    Column("provider_id", String(32), nullable=False),
    Column("event", String(64), nullable=False),
    Column("ledger_index", BigInteger, nullable=False),
    Column("url", Text, nullable=False),
    Column("note", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    # The order's revision the notice announces (migration 0004).
    Column("revision", Integer, nullable=False, server_default="1"),
    # The provider, or the order's enforcing authority (migration 0011).
    Column("addressee", String(32), nullable=False, server_default="provider"),
    Index("ix_notices_state_next", "state", "next_attempt_at"),
)

# The outbox of e-mail alerts (custody.alerts), written with the event each announces;
# ``once_key`` makes an alert that must go once (a near deadline) unique (migration 0008).
alerts = Table(
    "alerts",
    metadata,
    Column("id", Index64, primary_key=True, autoincrement=True),
    Column("order_id", String(32), nullable=False, index=True),
    Column("kind", String(64), nullable=False),
    Column("recipient", String(254), nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("once_key", String(400), nullable=True, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_alerts_state_next", "state", "next_attempt_at"),
)

# Browser sessions and sign-in links of the pages (``custody.sign_in``): only the SHA-256 of
# each secret is kept.
sessions = Table(
    "sessions",
    metadata,
    Column("secret_hash", LargeBinary(32), primary_key=True),
    Column("principal_id", String(64), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False, index=True),
    Column("last_seen_at", UTCDateTime, nullable=False, index=True),
)

sign_in_links = Table(
    "sign_in_links",
    metadata,
    Column("secret_hash", LargeBinary(32), primary_key=True),
    Column("principal_id", String(64), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
)

second_factors = Table(
    "second_factors",
    metadata,
    Column("principal_id", String(64), primary_key=True),
    Column("totp_secret", String(64), nullable=False),
    Column("last_step", BigInteger, nullable=True),
)

# The deployment's secret that signs the pages' cookie (one row, made by the migration).
cookie_secret = Table(
    "cookie_secret",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("secret", LargeBinary(32), nullable=False),
)
