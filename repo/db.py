"""The SQLite connection: one per request on `g`, PRAGMAs at connect, IMMEDIATE write
transactions, and in-place migrations keyed on `PRAGMA user_version`."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from flask import Flask, current_app, g

# MIGRATIONS[n] brings a database at user_version n+1 to n+2; schema.sql is always the newest
# schema, so a fresh database skips them all.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = []


def now() -> str:
    """The current UTC time as stored: ISO 8601 with microseconds and a Z (PEP 700 format)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def connect(path: str) -> sqlite3.Connection:
    """A connection in autocommit mode with WAL, foreign keys and a busy timeout."""
    connection = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("PRAGMA busy_timeout = 30000")
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection


def get_db() -> sqlite3.Connection:
    """This request's connection, opened on first use."""
    if "db" not in g:
        g.db = connect(current_app.config["DATABASE"])
    return g.db


def close_db(_error: BaseException | None = None) -> None:
    connection = g.pop("db", None)
    if connection is not None:
        connection.close()


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A short write transaction. IMMEDIATE takes the write lock up front: with several
    gunicorn processes a deferred read-then-write can fail with SQLITE_BUSY at once."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def init_db(connection: sqlite3.Connection, schema: str) -> None:
    """Create a fresh database from schema.sql, or migrate an existing one in place.

    Safe when several processes start at once: the schema is all IF NOT EXISTS and each
    migration re-reads user_version under the write lock.
    """
    if connection.execute("PRAGMA user_version").fetchone()[0] == 0:
        connection.executescript(f"BEGIN IMMEDIATE;\n{schema}\nCOMMIT;")
    while True:
        with transaction(connection):
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                return
            MIGRATIONS[version - 1](connection)
            connection.execute(f"PRAGMA user_version = {version + 1}")


def schema_text(app: Flask) -> str:
    with app.open_resource("../schema.sql") as handle:
        return handle.read().decode("utf-8")


def init_app(app: Flask) -> None:
    """Make sure the database exists and is current before the first request."""
    app.teardown_appcontext(close_db)
    connection = connect(app.config["DATABASE"])
    try:
        init_db(connection, schema_text(app))
    finally:
        connection.close()
