"""Engines for SQLite and PostgreSQL, tuned for a durable append-only ledger, and migrations.

SQLite runs in WAL mode with ``synchronous=FULL`` (a commit is on disk before it returns). The
driver's own transaction handling is switched off so that SQLAlchemy's BEGIN is ours: writers
open ``BEGIN IMMEDIATE`` and take SQLite's write lock before reading anything, which is what
serialises ledger appends across processes; readers use a plain deferred BEGIN.

A database that cannot be reached, or that drops the connection, raises ``StorageError`` from
every engine made here (503 with Retry-After over HTTP, never a 500); its transaction is rolled
back, so nothing is half-done.
"""

from __future__ import annotations

import ast
import contextlib
import os
import sqlite3
from importlib import resources
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from custody.errors import StorageError

if TYPE_CHECKING:
    # Alembic (with Mako) takes longer to load than a command takes to run: it is loaded
    # only to migrate.
    from alembic.config import Config as AlembicConfig

SQLITE_BUSY_TIMEOUT_MS = 60_000
# Page cache per connection (KiB): the append path updates pages all over the subject and
# node tables, and re-reading them from the OS on every batch costs more than the memory.
SQLITE_CACHE_KIB = 65_536
# Pages the WAL may hold before they are copied back into the database (default 1,000):
# pages that several appends touch are then copied once, not once per few batches.
SQLITE_WAL_PAGES = 10_000
WRITE = {"custos_write": True}


def database_errors(engine: Engine) -> tuple[type[Exception], ...]:
    """What a database call may raise: SQLAlchemy's errors and, from the driver cursors the
    hot paths use directly, the driver's own."""
    return (SQLAlchemyError, engine.dialect.loaded_dbapi.Error)


def _report_outages(engine: Engine) -> None:
    """Make a lost or unreachable database a StorageError, whichever store met it."""

    @event.listens_for(engine, "handle_error")
    def _unavailable(context: ExceptionContext) -> StorageError | None:
        # OperationalError is the DBAPI's class for failures outside the program's control
        # (PEP 249): connection lost or refused, the server shutting down, a lock timeout.
        lost = isinstance(context.sqlalchemy_exception, OperationalError | InterfaceError)
        if context.is_disconnect or lost:
            return StorageError(f"database unavailable: {context.original_exception}")
        return None


def create_database_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite files get WAL, full sync and write-lock-first BEGINs."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(url, pool_pre_ping=True, hide_parameters=True, **kwargs)
        _report_outages(engine)
        return engine
    if parsed.database and parsed.database != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
        # Created for the deployment's account alone; SQLite gives its WAL the same mode.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(parsed.database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    engine = create_engine(
        url, connect_args={"check_same_thread": False}, hide_parameters=True, **kwargs
    )
    _report_outages(engine)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        cursor.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_WAL_PAGES}")
        cursor.execute("")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Straight to the driver: every transaction, and so every durable append, begins
        # here, and SQLAlchemy's statement machinery cost more than the BEGIN itself. Its
        # failures are then the driver's, reported here as the engine reports them.
        write = connection.get_execution_options().get("custos_write", False)
        try:
            connection.connection.driver_connection.execute(  # type: ignore[union-attr]
                "BEGIN IMMEDIATE" if write else "BEGIN"
            )
        except sqlite3.OperationalError as exc:  # locked past the busy timeout, I/O error
            raise StorageError(f"database unavailable: {exc}") from exc
        except sqlite3.Error as exc:
            raise DBAPIError.instance("BEGIN", None, exc, sqlite3.Error) from exc

    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _alembic_config(connection: Connection) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(resources.files("storage") / "migrations"))
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    from alembic import command

    with engine.connect() as connection:
        command.upgrade(_alembic_config(connection), "head")
        connection.commit()


def migration_heads() -> set[str]:
    """The newest revisions of ``storage/migrations``, read from the migration files' own
    ``revision`` and ``down_revision`` lines: what alembic's ``ScriptDirectory.get_heads()``
    gives, without loading alembic."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (resources.files("storage") / "migrations" / "versions").iterdir():
        if not path.name.endswith(".py"):
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            name, sep, value = line.partition("=")
            name = name.partition(":")[0].strip()  # ``revision: str = "0001"`` too
            if sep and name in ("revision", "down_revision"):
                found = ast.literal_eval(value.strip())
                named = {found} if isinstance(found, str) else set(found or ())
                (revisions if name == "revision" else parents).update(named)
    return revisions - parents


def schema_is_current(engine: Engine) -> bool:
    """True when the database has every migration applied."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return False
        applied = connection.execute(text("SELECT version_num FROM alembic_version"))
        return {row[0] for row in applied} == migration_heads()
