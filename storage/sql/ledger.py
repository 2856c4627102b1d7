"""The ledger store on SQL: entries, Merkle nodes and kept checkpoints.

Appends are serialised by a lock the database holds for the whole transaction: on SQLite the
write lock taken by ``BEGIN IMMEDIATE``, on PostgreSQL a row lock on ``ledger_head``
(``SELECT ... FOR UPDATE``). Either way one append transaction runs at a time across every
thread and process, so indexes are dense and never repeat.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from custody.errors import StorageError
from custody.interfaces import AppendTransaction, KeptCheckpoint, LedgerEntry
from custody.merkle import NodeId
from storage.sql.database import WRITE
from storage.sql.schema import (
    checkpoints,
    ledger_entries,
    ledger_nodes,
    ledger_subjects,
)

# Keep each statement's bound parameters well under SQLite's limit (32,766), and an OR chain
# well under its expression depth limit (1,000).
_CHUNK = 900
_NODE_CHUNK = 200
_STREAM_ROWS = 10_000


def _entry(row: Sequence[object]) -> LedgerEntry:
    idx, subject, leaf_hash, leaf = row
    return LedgerEntry(
        index=int(idx),  # type: ignore[call-overload]
        subject=str(subject),
        leaf_hash=bytes(leaf_hash),  # type: ignore[call-overload]
        leaf=bytes(leaf),  # type: ignore[call-overload]
    )


_ENTRY_COLUMNS = (
    ledger_entries.c.idx,
    ledger_entries.c.subject,
    ledger_entries.c.leaf_hash,
    ledger_entries.c.leaf,
)


class _HotSql:
    """The append path's statements as driver SQL for one dialect's parameter style.

    An append runs a handful of statements while holding the ledger's lock; compiling them
    through SQLAlchemy cost more than the statements themselves, so they are written once
    here, in the SQL both SQLite (3.24+) and PostgreSQL accept.
    """

    def __init__(self, dialect: str) -> None:
        p = "?" if dialect == "sqlite" else "%s"
        self.p = p
        self.size = "SELECT size FROM ledger_head WHERE id = 1"
        self.lock = self.size + ("" if dialect == "sqlite" else " FOR UPDATE")
        columns = "idx, subject, leaf_hash, leaf"
        self.insert_entry = f"INSERT INTO ledger_entries ({columns}) VALUES ({p}, {p}, {p}, {p})"
        self.insert_node = f"INSERT INTO ledger_nodes (level, idx, hash) VALUES ({p}, {p}, {p})"
        self.upsert_head = (
            f"INSERT INTO ledger_subjects (subject, last_idx, last_hash) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT (subject) DO UPDATE "
            "SET last_idx = excluded.last_idx, last_hash = excluded.last_hash"
        )
        self.set_size = f"UPDATE ledger_head SET size = {p} WHERE id = 1"

    def heads(self, count: int) -> str:
        marks = ", ".join([self.p] * count)
        return f"SELECT subject, last_hash FROM ledger_subjects WHERE subject IN ({marks})"

    def nodes(self, count: int) -> str:
        # An OR of (level, idx) pairs: SQLite answers it with one primary-key search per
        # pair, where a row-value IN list would scan the table.
        pairs = " OR ".join([f"(level = {self.p} AND idx = {self.p})"] * count)
        return f"SELECT level, idx, hash FROM ledger_nodes WHERE {pairs}"

    def read_nodes(self, cursor: Any, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
        found: dict[NodeId, bytes] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), _NODE_CHUNK):
            chunk = unique[start : start + _NODE_CHUNK]
            cursor.execute(self.nodes(len(chunk)), [x for pair in chunk for x in pair])
            found.update({(lv, i): bytes(h) for lv, i, h in cursor.fetchall()})
        return found


class SqlAppendTransaction:
    """The open, locked append transaction (see ``custody.interfaces.AppendTransaction``)."""

    def __init__(self, connection: Connection, sql: _HotSql) -> None:
        self.connection = connection
        self._sql = sql
        self._cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        self._cursor.execute(sql.lock)
        self._size = int(self._cursor.fetchone()[0])

    @property
    def size(self) -> int:
        return self._size

    def nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        return self._sql.read_nodes(self._cursor, ids)

    def last_leaf_hashes(self, subjects: Sequence[str]) -> Mapping[str, bytes]:
        found: dict[str, bytes] = {}
        for start in range(0, len(subjects), _CHUNK):
            chunk = list(subjects[start : start + _CHUNK])
            self._cursor.execute(self._sql.heads(len(chunk)), chunk)
            found.update({subject: bytes(h) for subject, h in self._cursor.fetchall()})
        return found

    def write(self, entries: Sequence[LedgerEntry], nodes: Sequence[tuple[NodeId, bytes]]) -> None:
        if not entries:
            return
        if entries[0].index != self._size:
            raise StorageError(f"entry {entries[0].index} does not follow size {self._size}")
        cursor, sql = self._cursor, self._sql
        cursor.executemany(
            sql.insert_entry, [(e.index, e.subject, e.leaf_hash, e.leaf) for e in entries]
        )
        cursor.executemany(sql.insert_node, [(lv, i, h) for (lv, i), h in nodes])
        heads = {e.subject: e for e in entries}  # the last entry of each subject wins
        cursor.executemany(sql.upsert_head, [(s, e.index, e.leaf_hash) for s, e in heads.items()])
        self._size = entries[-1].index + 1
        cursor.execute(sql.set_size, (self._size,))


def connection_of(tx: AppendTransaction) -> Connection:
    """The connection of an open append transaction, for stores that write alongside it."""
    if not isinstance(tx, SqlAppendTransaction):
        raise TypeError("SQL stores write through a SQL append transaction")
    return tx.connection


class SqlLedgerStore:
    """``custody.interfaces.LedgerStore`` on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sql = _HotSql(engine.dialect.name)

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
                yield SqlAppendTransaction(connection, self._sql)
        except SQLAlchemyError as exc:
            raise StorageError(f"ledger append failed: {exc}") from exc

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as connection, connection.begin():
                yield connection
        except SQLAlchemyError as exc:
            raise StorageError(f"ledger read failed: {exc}") from exc

    @contextmanager
    def _driver(self) -> Iterator[Any]:
        """A pooled driver cursor for the hot reads (size, proof nodes): they run in every
        request, and SQLAlchemy's per-statement work cost more than the queries."""
        try:
            connection = self.engine.raw_connection()
        except SQLAlchemyError as exc:
            raise StorageError(f"ledger read failed: {exc}") from exc
        try:
            yield connection.cursor()
        except self.engine.dialect.loaded_dbapi.Error as exc:
            raise StorageError(f"ledger read failed: {exc}") from exc
        finally:
            connection.close()

    def size(self) -> int:
        with self._driver() as cursor:
            cursor.execute(self._sql.size)
            return int(cursor.fetchone()[0])

    def nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        with self._driver() as cursor:
            return self._sql.read_nodes(cursor, ids)

    def nodes_at_level(self, level: int, start: int, end: int) -> list[bytes]:
        with self._reading() as connection:
            rows = connection.execute(
                select(ledger_nodes.c.hash)
                .where(
                    ledger_nodes.c.level == level,
                    ledger_nodes.c.idx >= start,
                    ledger_nodes.c.idx < end,
                )
                .order_by(ledger_nodes.c.idx)
            )
            return [bytes(h) for (h,) in rows]

    def entries(self, start: int, end: int) -> list[LedgerEntry]:
        with self._reading() as connection:
            rows = connection.execute(
                select(*_ENTRY_COLUMNS)
                .where(ledger_entries.c.idx >= start, ledger_entries.c.idx < end)
                .order_by(ledger_entries.c.idx)
            )
            return [_entry(r) for r in rows]

    def subject_entries(self, subject: str) -> list[LedgerEntry]:
        with self._reading() as connection:
            rows = connection.execute(
                select(*_ENTRY_COLUMNS)
                .where(ledger_entries.c.subject == subject)
                .order_by(ledger_entries.c.idx)
            )
            return [_entry(r) for r in rows]

    def index_of_leaf_hash(self, leaf_hash: bytes) -> int | None:
        with self._reading() as connection:
            found = connection.execute(
                select(func.min(ledger_entries.c.idx)).where(
                    ledger_entries.c.leaf_hash == leaf_hash
                )
            ).scalar()
            return None if found is None else int(found)

    def iter_entries(self) -> Iterator[LedgerEntry]:
        with self._reading() as connection:
            rows = connection.execution_options(yield_per=_STREAM_ROWS).execute(
                select(*_ENTRY_COLUMNS).order_by(ledger_entries.c.idx)
            )
            for row in rows:
                yield _entry(row)

    def iter_nodes(self) -> Iterator[tuple[NodeId, bytes]]:
        with self._reading() as connection:
            rows = connection.execution_options(yield_per=_STREAM_ROWS).execute(
                select(ledger_nodes.c.level, ledger_nodes.c.idx, ledger_nodes.c.hash).order_by(
                    ledger_nodes.c.level, ledger_nodes.c.idx
                )
            )
            for level, idx, h in rows:
                yield (int(level), int(idx)), bytes(h)

    def subject_heads(self) -> Iterator[tuple[str, int, bytes]]:
        with self._reading() as connection:
            rows = connection.execution_options(yield_per=_STREAM_ROWS).execute(
                select(
                    ledger_subjects.c.subject,
                    ledger_subjects.c.last_idx,
                    ledger_subjects.c.last_hash,
                )
            )
            for subject, idx, h in rows:
                yield str(subject), int(idx), bytes(h)

    def keep_checkpoint(self, checkpoint: KeptCheckpoint) -> None:
        try:
            with self._writing() as connection:
                exists = connection.execute(
                    select(checkpoints.c.size).where(checkpoints.c.size == checkpoint.size)
                ).first()
                if exists is None:
                    connection.execute(
                        insert(checkpoints).values(
                            size=checkpoint.size,
                            root=checkpoint.root,
                            note=checkpoint.note,
                            signed_at=checkpoint.signed_at,
                        )
                    )
        except SQLAlchemyError as exc:
            if self.checkpoint(checkpoint.size) is None:
                raise StorageError(f"keeping checkpoint failed: {exc}") from exc

    def _checkpoints(self, *where: object, newest_only: bool = False) -> list[KeptCheckpoint]:
        query = select(checkpoints).where(*where).order_by(checkpoints.c.size)  # type: ignore[arg-type]
        if newest_only:
            query = select(checkpoints).order_by(checkpoints.c.size.desc()).limit(1)
        with self._reading() as connection:
            return [
                KeptCheckpoint(
                    size=int(r.size), root=bytes(r.root), note=bytes(r.note), signed_at=r.signed_at
                )
                for r in connection.execute(query)
            ]

    def latest_checkpoint(self) -> KeptCheckpoint | None:
        found = self._checkpoints(newest_only=True)
        return found[0] if found else None

    def checkpoint(self, size: int) -> KeptCheckpoint | None:
        found = self._checkpoints(checkpoints.c.size == size)
        return found[0] if found else None

    def checkpoints(self) -> list[KeptCheckpoint]:
        return self._checkpoints()
