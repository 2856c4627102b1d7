"""The SQLite engine's transactions: writers take the write lock first, and a lock that
stays taken is reported as the database being unavailable, never as a crash."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from custody.errors import StorageError
from storage.sql import database
from storage.sql.database import WRITE, create_database_engine


def test_a_writer_holds_the_write_lock_from_its_first_statement(tmp_path: Path) -> None:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.connect().execution_options(**WRITE) as connection, connection.begin():
        other = sqlite3.connect(tmp_path / "db.sqlite", timeout=0, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()
    engine.dispose()


def test_a_reader_does_not_take_the_write_lock(tmp_path: Path) -> None:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.connect() as connection, connection.begin():
        assert connection.execute(text("SELECT 1")).scalar() == 1
        other = sqlite3.connect(tmp_path / "db.sqlite", timeout=0, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        other.close()
    engine.dispose()


def test_a_write_lock_held_past_the_busy_timeout_is_a_storage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 50)
    engine = create_database_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    connection = engine.connect().execution_options(**WRITE)  # the database is in WAL mode
    holder = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StorageError, match="database unavailable"):
            connection.begin()
        connection.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with engine.connect().execution_options(**WRITE) as connection, connection.begin():
        pass  # the engine is usable once the lock is released
    engine.dispose()
