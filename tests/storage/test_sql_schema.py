"""The migrations build exactly the schema the code describes, on both databases."""

from __future__ import annotations

from importlib import resources

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from storage.sql.database import (
    create_database_engine,
    migrate,
    migration_heads,
    schema_is_current,
)
from storage.sql.schema import metadata


def test_migrations_match_the_table_definitions(database_url: str) -> None:
    engine = create_database_engine(database_url)
    try:
        assert not schema_is_current(engine)
        migrate(engine)
        migrate(engine)  # a second run changes nothing
        assert schema_is_current(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode_with_full_sync(sqlite_url: str) -> None:
    engine = create_database_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    finally:
        engine.dispose()


def test_the_migration_heads_read_from_the_files_are_alembic_s() -> None:
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    config = AlembicConfig()
    config.set_main_option("script_location", str(resources.files("storage") / "migrations"))

    assert migration_heads() == set(ScriptDirectory.from_config(config).get_heads())


def test_a_database_one_migration_behind_is_not_current(sqlite_url: str) -> None:
    engine = create_database_engine(sqlite_url)
    try:
        migrate(engine)
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
        assert not schema_is_current(engine)
    finally:
        engine.dispose()
