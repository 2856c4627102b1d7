"""The ledger store on SQL: entries, Merkle nodes, subject heads and kept checkpoints.

Appends are serialised by a lock the database holds for the whole transaction: on SQLite the
write lock taken by ``BEGIN IMMEDIATE``, on PostgreSQL a row lock on ``ledger_head``
(``SELECT ... FOR UPDATE``). Either way one append transaction runs at a time across every
thread and process, so indexes are dense and never repeat.

Only append-ordered structures are written on the append path (entries, nodes by level and
index, and one row per subject); a subject's history is the chain of ``prev_idx`` pointers
walked back from its head, and the leaf-hash index is caught up when a lookup needs it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from typing import Any

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import SQLAlchemyError

from custody.errors import StorageError
from custody.interfaces import AppendTransaction, KeptCheckpoint, LedgerEntry, LedgerStore
from custody.merkle import NodeId
from storage.sql.database import WRITE, create_database_engine, database_errors
from storage.sql.schema import checkpoints

# Keep each statement's bound parameters well under SQLite's limit (32,766), and an OR chain
# well under its expression depth limit (1,000).
_CHUNK = 900
_NODE_CHUNK = 200
# Leaves indexed by hash per transaction while catching the leaf index up.
_LEAF_INDEX_CHUNK = 50_000
# The second key of the checkpoint signer's PostgreSQL advisory lock (the first is the schema's).
_SIGNER_LOCK = 6962


def _entry(row: Sequence[Any]) -> LedgerEntry:
    idx, subject, leaf_hash, leaf, prev_idx = row
    return LedgerEntry(
        index=int(idx),
        subject=str(subject),
        leaf_hash=bytes(leaf_hash),
        leaf=bytes(leaf),
        prev_index=None if prev_idx is None else int(prev_idx),
    )


def hash8(leaf_hash: bytes) -> int:
    """The leaf-index key: the hash's first 8 bytes as a signed 64-bit integer."""
    return int.from_bytes(leaf_hash[:8], "big", signed=True)


class _HotSql:
    """The ledger's frequent statements as driver SQL for one dialect's parameter style.

    Appends, proofs and audits run these many times; compiling them through SQLAlchemy cost
    more than the statements themselves, so they are written once here, in SQL that both
    SQLite (3.24+) and PostgreSQL accept.
    """

    def __init__(self, dialect: str) -> None:
        p = "?" if dialect == "sqlite" else "%s"
        self.p = p
        self.size = "SELECT size FROM ledger_head WHERE id = 1"
        self.lock = self.size + ("" if dialect == "sqlite" else " FOR UPDATE")
        columns = "idx, subject, leaf_hash, leaf, prev_idx"
        self.insert_entry = (
            f"INSERT INTO ledger_entries ({columns}) VALUES ({p}, {p}, {p}, {p}, {p})"
        )
        self.entries = (
            f"SELECT {columns} FROM ledger_entries WHERE idx >= {p} AND idx < {p} ORDER BY idx"
        )
        self.insert_node = f"INSERT INTO ledger_nodes (level, idx, hash) VALUES ({p}, {p}, {p})"
        self.level_range = (
            f"SELECT hash FROM ledger_nodes WHERE level = {p} AND idx >= {p} AND idx < {p} "
            "ORDER BY idx"
        )
        self.leaf_range = (
            f"SELECT leaf_hash FROM ledger_entries WHERE idx >= {p} AND idx < {p} ORDER BY idx"
        )
        self.upsert_head = (
            f"INSERT INTO ledger_subjects (subject, last_idx, last_hash) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT (subject) DO UPDATE "
            "SET last_idx = excluded.last_idx, last_hash = excluded.last_hash"
        )
        self.set_size = f"UPDATE ledger_head SET size = {p} WHERE id = 1"
        self.history = (
            "WITH RECURSIVE chain(idx) AS ("
            f" SELECT last_idx FROM ledger_subjects WHERE subject = {p}"
            " UNION ALL"
            " SELECT e.prev_idx FROM ledger_entries e JOIN chain ON e.idx = chain.idx"
            " WHERE e.prev_idx IS NOT NULL)"
            f" SELECT {columns} FROM ledger_entries WHERE idx IN (SELECT idx FROM chain)"
            " ORDER BY idx"
        )
        self.indexed = "SELECT size, leaf_indexed FROM ledger_head WHERE id = 1"
        self.lock_indexed = self.indexed + ("" if dialect == "sqlite" else " FOR UPDATE")
        self.insert_leaf_index = f"INSERT INTO ledger_leaf_index (hash8, idx) VALUES ({p}, {p})"
        self.set_indexed = f"UPDATE ledger_head SET leaf_indexed = {p} WHERE id = 1"
        self.find_leaf = (
            "SELECT l.idx FROM ledger_leaf_index l"
            " JOIN ledger_entries e ON e.idx = l.idx"
            f" WHERE l.hash8 = {p} AND e.leaf_hash = {p} ORDER BY l.idx LIMIT 1"
        )

    def heads(self, count: int) -> str:
        marks = ", ".join([self.p] * count)
        return (
            f"SELECT subject, last_idx, last_hash FROM ledger_subjects WHERE subject IN ({marks})"
        )

    def nodes(self, count: int) -> str:
        # An OR of (level, idx) pairs: SQLite answers it with one primary-key search per
        # pair, where a row-value IN list would scan the table.
        pairs = " OR ".join([f"(level = {self.p} AND idx = {self.p})"] * count)
        return f"SELECT level, idx, hash FROM ledger_nodes WHERE {pairs}"

    def leaves(self, count: int) -> str:
        marks = ", ".join([self.p] * count)
        return f"SELECT idx, leaf_hash FROM ledger_entries WHERE idx IN ({marks})"

    def read_nodes(self, cursor: Any, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
        found: dict[NodeId, bytes] = {}
        leaves = [i for level, i in dict.fromkeys(ids) if level == 0]
        for start in range(0, len(leaves), _CHUNK):
            indexes = leaves[start : start + _CHUNK]
            cursor.execute(self.leaves(len(indexes)), indexes)
            found.update({(0, i): bytes(h) for i, h in cursor.fetchall()})
        above = [node for node in dict.fromkeys(ids) if node[0] > 0]
        for start in range(0, len(above), _NODE_CHUNK):
            chunk = above[start : start + _NODE_CHUNK]
            cursor.execute(self.nodes(len(chunk)), [x for pair in chunk for x in pair])
            found.update({(lv, i): bytes(h) for lv, i, h in cursor.fetchall()})
        return found


class SqlAppendTransaction:
    """The open, locked append transaction (see ``custody.interfaces.AppendTransaction``)."""

    def __init__(
        self, connection: Connection, sql: _HotSql, errors: tuple[type[Exception], ...]
    ) -> None:
        self.connection = connection
        self._sql = sql
        self._errors = errors
        self._cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        self._cursor.execute(sql.lock)
        self._size = int(self._cursor.fetchone()[0])

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        size = self._size
        try:
            self._cursor.execute("SAVEPOINT custos_writer")
        except self._errors as exc:
            raise StorageError(f"ledger append failed: {exc}") from exc
        try:
            yield
        except BaseException:
            try:
                self._cursor.execute("ROLLBACK TO SAVEPOINT custos_writer")
            except self._errors as exc:
                raise StorageError(f"ledger append failed: {exc}") from exc
            self._size = size
            raise
        try:
            self._cursor.execute("RELEASE SAVEPOINT custos_writer")
        except self._errors as exc:
            raise StorageError(f"ledger append failed: {exc}") from exc

    @property
    def size(self) -> int:
        return self._size

    def nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        return self._sql.read_nodes(self._cursor, ids)

    def subject_heads(self, subjects: Sequence[str]) -> Mapping[str, tuple[int, bytes]]:
        found: dict[str, tuple[int, bytes]] = {}
        for start in range(0, len(subjects), _CHUNK):
            chunk = list(subjects[start : start + _CHUNK])
            self._cursor.execute(self._sql.heads(len(chunk)), chunk)
            found.update({s: (int(i), bytes(h)) for s, i, h in self._cursor.fetchall()})
        return found

    def write(self, entries: Sequence[LedgerEntry], nodes: Sequence[tuple[NodeId, bytes]]) -> None:
        if not entries:
            return
        if entries[0].index != self._size:
            raise StorageError(f"entry {entries[0].index} does not follow size {self._size}")
        cursor, sql = self._cursor, self._sql
        cursor.executemany(
            sql.insert_entry,
            [(e.index, e.subject, e.leaf_hash, e.leaf, e.prev_index) for e in entries],
        )
        # Level 0 is the entries' own leaf_hash column: storing it again would double the
        # rows every append writes.
        cursor.executemany(sql.insert_node, [(lv, i, h) for (lv, i), h in nodes if lv > 0])
        heads = {e.subject: e for e in entries}  # the last entry of each subject wins
        cursor.executemany(sql.upsert_head, [(s, e.index, e.leaf_hash) for s, e in heads.items()])
        self._size = entries[-1].index + 1
        cursor.execute(sql.set_size, (self._size,))


def _kept_checkpoints(
    connection: Connection, *where: object, newest_only: bool = False
) -> list[KeptCheckpoint]:
    query = select(checkpoints).where(*where).order_by(checkpoints.c.size)  # type: ignore[arg-type]
    if newest_only:
        query = select(checkpoints).order_by(checkpoints.c.size.desc()).limit(1)
    return [
        KeptCheckpoint(
            size=int(r.size), root=bytes(r.root), note=bytes(r.note), signed_at=r.signed_at
        )
        for r in connection.execute(query)
    ]


class SqlCheckpointSigning:
    """The open transaction holding the signer's lock (``custody.interfaces.CheckpointSigning``)."""

    def __init__(self, connection: Connection, sql: _HotSql) -> None:
        self.connection = connection
        self._sql = sql

    def latest(self) -> KeptCheckpoint | None:
        found = _kept_checkpoints(self.connection, newest_only=True)
        return found[0] if found else None

    def size(self) -> int:
        return int(self.connection.exec_driver_sql(self._sql.size).scalar_one())

    def keep(self, checkpoint: KeptCheckpoint) -> None:
        exists = self.connection.execute(
            select(checkpoints.c.size).where(checkpoints.c.size == checkpoint.size)
        ).first()
        if exists is None:
            self.connection.execute(
                insert(checkpoints).values(
                    size=checkpoint.size,
                    root=checkpoint.root,
                    note=checkpoint.note,
                    signed_at=checkpoint.signed_at,
                )
            )


def connection_of(tx: AppendTransaction) -> Connection:
    """The connection of an open append transaction, for stores that write alongside it."""
    if not isinstance(tx, SqlAppendTransaction):
        raise TypeError("SQL stores write through a SQL append transaction")
    return tx.connection


_OPENED: dict[tuple[int, str], SqlLedgerStore] = {}


def open_sql_ledger_store(url: str) -> SqlLedgerStore:
    """The store at ``url``, one per process (used by audit workers). Keyed by process id:
    a forked worker must never reuse its parent's pooled connections."""
    key = (os.getpid(), url)
    if key not in _OPENED:
        _OPENED[key] = SqlLedgerStore(create_database_engine(url))
    return _OPENED[key]


class SqlLedgerStore:
    """``custody.interfaces.LedgerStore`` on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sql = _HotSql(engine.dialect.name)
        # The append path and the frequent reads use driver cursors, whose errors are the
        # driver's own rather than SQLAlchemy's: both become StorageError here.
        self._errors = database_errors(engine)
        # The driver connection that reads_together() lends this context's reads, if any.
        self._shared: ContextVar[Any] = ContextVar(f"ledger-reads-{id(self)}", default=None)

    def opener(self) -> Callable[[], LedgerStore]:
        return partial(open_sql_ledger_store, self.engine.url.render_as_string(False))

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction (on SQLite, one that holds the write lock from its start)."""
        with (
            self.engine.connect().execution_options(**WRITE) as connection,
            connection.begin(),
        ):
            yield connection

    @contextmanager
    def appending(self) -> Iterator[SqlAppendTransaction]:
        try:
            with self._writing() as connection:
                yield SqlAppendTransaction(connection, self._sql, self._errors)
        except self._errors as exc:
            raise StorageError(f"ledger append failed: {exc}") from exc

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as connection, connection.begin():
                yield connection
        except self._errors as exc:
            raise StorageError(f"ledger read failed: {exc}") from exc

    @contextmanager
    def reads_together(self) -> Iterator[None]:
        """Within, this context's frequent reads share one pooled connection: a bundle's
        export makes a few dozen, and on PostgreSQL each checkout costs two round trips (its
        liveness ping and its reset) more than the read itself. Each read still sees what
        was committed before it began, as the connection is in autocommit (SQLite's are)."""
        if self._shared.get() is not None:
            yield
            return
        try:
            connection = self.engine.raw_connection()
        except self._errors as exc:
            raise StorageError(f"ledger read failed: {exc}") from exc
        driver: Any = connection.driver_connection
        # Outside any transaction, so that a long export holds none open between its reads.
        autocommit = self.engine.dialect.name == "postgresql" and not driver.autocommit
        if autocommit:
            driver.rollback()
            driver.autocommit = True
        token = self._shared.set(connection)
        try:
            yield
        finally:
            self._shared.reset(token)
            if autocommit:
                driver.autocommit = False
            connection.close()

    @contextmanager
    def _driver(self) -> Iterator[Any]:
        """A pooled driver cursor for the frequent reads: SQLAlchemy's per-statement work
        cost more than these queries."""
        shared = self._shared.get()
        try:
            connection = shared if shared is not None else self.engine.raw_connection()
        except self._errors as exc:
            raise StorageError(f"ledger read failed: {exc}") from exc
        try:
            cursor = connection.cursor()
            try:
                yield cursor
            finally:
                cursor.close()
        except self._errors as exc:
            raise StorageError(f"ledger read failed: {exc}") from exc
        finally:
            if shared is None:
                connection.close()

    def size(self) -> int:
        with self._driver() as cursor:
            cursor.execute(self._sql.size)
            return int(cursor.fetchone()[0])

    def nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        with self._driver() as cursor:
            return self._sql.read_nodes(cursor, ids)

    def nodes_at_level(self, level: int, start: int, end: int) -> list[bytes]:
        with self._driver() as cursor:
            if level == 0:
                cursor.execute(self._sql.leaf_range, (start, end))
            else:
                cursor.execute(self._sql.level_range, (level, start, end))
            return [bytes(h) for (h,) in cursor.fetchall()]

    def node_count(self) -> int:
        with self._driver() as cursor:
            cursor.execute("SELECT COUNT(*) FROM ledger_nodes")
            above = int(cursor.fetchone()[0])
            cursor.execute("SELECT COUNT(*) FROM ledger_entries")
            return above + int(cursor.fetchone()[0])

    def entries(self, start: int, end: int) -> list[LedgerEntry]:
        with self._driver() as cursor:
            cursor.execute(self._sql.entries, (start, end))
            return [_entry(r) for r in cursor.fetchall()]

    def subject_entries(self, subject: str) -> list[LedgerEntry]:
        with self._driver() as cursor:
            cursor.execute(self._sql.history, (subject,))
            return [_entry(r) for r in cursor.fetchall()]

    def iter_entries(self, batch: int = 10_000) -> Iterator[LedgerEntry]:
        start = 0
        while True:
            chunk = self.entries(start, start + batch)
            yield from chunk
            if len(chunk) < batch:
                return
            start = chunk[-1].index + 1

    def all_subject_heads(self) -> Iterator[tuple[str, int, bytes]]:
        with self._driver() as cursor:
            cursor.execute("SELECT subject, last_idx, last_hash FROM ledger_subjects")
            for subject, idx, h in cursor.fetchall():
                yield str(subject), int(idx), bytes(h)

    def index_of_leaf_hash(self, leaf_hash: bytes) -> int | None:
        self._catch_up_leaf_index()
        with self._driver() as cursor:
            cursor.execute(self._sql.find_leaf, (hash8(leaf_hash), leaf_hash))
            row = cursor.fetchone()
        return None if row is None else int(row[0])

    def _catch_up_leaf_index(self) -> None:
        """Index the leaves appended since the last lookup, a bounded chunk per transaction."""
        while True:
            with self._driver() as cursor:
                cursor.execute(self._sql.indexed)
                size, indexed = cursor.fetchone()
            if indexed >= size:
                return
            try:
                with self._writing() as connection:
                    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
                    cursor.execute(self._sql.lock_indexed)
                    size, indexed = cursor.fetchone()
                    end = min(size, indexed + _LEAF_INDEX_CHUNK)
                    cursor.execute(self._sql.leaf_range, (indexed, end))
                    keys = sorted(
                        (hash8(bytes(h)), i)
                        for i, (h,) in enumerate(cursor.fetchall(), start=indexed)
                    )
                    cursor.executemany(self._sql.insert_leaf_index, keys)
                    cursor.execute(self._sql.set_indexed, (end,))
            except self._errors as exc:
                raise StorageError(f"leaf index update failed: {exc}") from exc

    @contextmanager
    def signing_checkpoint(self) -> Iterator[SqlCheckpointSigning]:
        """The signer's lock: on SQLite the write lock (``BEGIN IMMEDIATE``), on PostgreSQL a
        transaction-scoped advisory lock named after the schema, so that logs in other
        schemas of the same database sign on their own."""
        try:
            with self._writing() as connection:
                if connection.dialect.name != "sqlite":
                    connection.exec_driver_sql(
                        "SELECT pg_advisory_xact_lock(hashtext(current_schema()), %s)",
                        (_SIGNER_LOCK,),
                    )
                yield SqlCheckpointSigning(connection, self._sql)
        except SQLAlchemyError as exc:
            raise StorageError(f"checkpoint signing failed: {exc}") from exc

    def _checkpoints(self, *where: object, newest_only: bool = False) -> list[KeptCheckpoint]:
        with self._reading() as connection:
            return _kept_checkpoints(connection, *where, newest_only=newest_only)

    def latest_checkpoint(self) -> KeptCheckpoint | None:
        found = self._checkpoints(newest_only=True)
        return found[0] if found else None

    def checkpoint(self, size: int) -> KeptCheckpoint | None:
        found = self._checkpoints(checkpoints.c.size == size)
        return found[0] if found else None

    def checkpoints(self) -> list[KeptCheckpoint]:
        return self._checkpoints()
