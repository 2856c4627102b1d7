"""SQL storage (SQLAlchemy Core): SQLite embedded, PostgreSQL through psycopg 3."""
