"""The database face every module imports: one connection per thread, kept open across
requests; write transactions that take the one write lock up front; read snapshots; the schema,
its migrations, and copies to and from a SQLite file (backups).

SQLite (the default, in the data dir) is used through sqlite3 itself, unwrapped, since the page
rate depends on it. PostgreSQL (REPO_DATABASE_URL) goes through repo.postgres, whose connections
answer the same calls with the same SQL: `?` placeholders, rows by index or column name.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, Literal, Protocol

from flask import Flask, current_app

from . import RESOURCES
from .migrations import SQLITE as MIGRATIONS


class Row(Protocol):
    """A result row on either engine (sqlite3.Row, repo.postgres.Row)."""

    def __getitem__(self, key: int | str, /) -> Any: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __len__(self) -> int: ...
    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    """What an execute() answers, on either engine."""

    rowcount: int

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the domain code asks of a connection: sqlite3's own calls, on either engine."""

    @property
    def in_transaction(self) -> bool: ...
    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor: ...
    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


class PostgresError(Exception):
    """An error of PostgreSQL's, with its SQLSTATE: repo.postgres raises these for psycopg's,
    so that callers catch one name for both engines and never import psycopg."""

    def __init__(self, message: str, sqlstate: str | None = None):
        super().__init__(message)
        self.sqlstate = sqlstate


class PostgresIntegrityError(PostgresError):
    """A constraint refused a row (SQLSTATE class 23)."""


class PostgresOperationalError(PostgresError):
    """The server could not do it: a full disk (53100), a lost connection, no connection."""


# What callers catch, on either engine.
IntegrityError = (sqlite3.IntegrityError, PostgresIntegrityError)
OperationalError = (sqlite3.OperationalError, PostgresOperationalError)
DatabaseError = (sqlite3.Error, PostgresError)


def now() -> str:
    """The current UTC time as stored: ISO 8601 with microseconds and a Z (PEP 700 format)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dialect(connection: Connection) -> Literal["sqlite", "postgresql"]:
    """Which engine `connection` talks to."""
    return "sqlite" if isinstance(connection, sqlite3.Connection) else "postgresql"


# WAL with synchronous=NORMAL never corrupts the database, but SQLite fsyncs the WAL only at
# checkpoints: a commit made just before a power cut can be rolled back. Good enough for
# sessions and throttle counts; a commit a client is told about is made durable (FULL).
SYNCHRONOUS = "NORMAL"


def connect(path: str) -> sqlite3.Connection:
    """A SQLite connection in autocommit mode with WAL, foreign keys and a busy timeout."""
    connection = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("PRAGMA busy_timeout = 30000")
    connection.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")
    # One connection per thread: keep each one's page cache small (1 MiB); the OS caches the
    # file for all of them.
    connection.execute("PRAGMA cache_size = -1024")
    return connection


def get_db() -> Connection:
    """This thread's connection to the app's database, opened on first use and then kept:
    opening one and setting its PRAGMAs costs more than answering a cached index page."""
    return connection_for(current_app)


def connection_for(app: Flask) -> Connection:
    """get_db() for code that runs outside a request context (the WSGI fast path)."""
    local = app.extensions["db"]
    connection = getattr(local, "connection", None)
    if connection is None:
        connection = local.connection = open_connection(app)
    return connection


def open_connection(app: Flask) -> Connection:
    """A connection of its own to the app's database, for work that outlives the request
    that started it (a thread of its own); close it when done."""
    postgres = app.extensions.get("postgres")
    if postgres is None:
        return connect(app.config["DATABASE"])
    return postgres.connection()


def _end_request(_error: BaseException | None = None) -> None:
    """Never hand a connection with an open transaction to the thread's next request."""
    connection = getattr(current_app.extensions["db"], "connection", None)
    if connection is not None and connection.in_transaction:
        connection.rollback()


def close_db() -> None:
    """Close this thread's connection, and PostgreSQL's pool of this process: before gunicorn
    forks its workers, which open their own."""
    connection = current_app.extensions["db"].__dict__.pop("connection", None)
    if connection is not None:
        connection.close()
    postgres = current_app.extensions.get("postgres")
    if postgres is not None:
        postgres.close()


def transaction(connection: Connection, durable: bool = False):
    """A short write transaction, holding the one write lock from its start: on SQLite
    BEGIN IMMEDIATE, on PostgreSQL one advisory lock (repo.postgres), so write transactions
    run one at a time on both, and every argument made about them holds on both.

    `durable` for a commit that a client is told about (an upload): it survives a power cut.
    """
    if isinstance(connection, sqlite3.Connection):
        return _immediate(connection, durable)
    return connection.transaction(durable)


@contextmanager
def _immediate(connection: sqlite3.Connection, durable: bool) -> Iterator[sqlite3.Connection]:
    """SQLite's write transaction. IMMEDIATE takes the write lock up front: with several
    gunicorn processes a deferred read-then-write can fail with SQLITE_BUSY at once.

    Durable: in WAL mode, synchronous=FULL makes SQLite fsync the WAL before COMMIT returns.
    That is one fsync more per upload (which fsyncs its blob anyway); SQLite refuses to change
    the level inside a transaction, so it is set around it.
    """
    if durable:
        connection.execute("PRAGMA synchronous = FULL")
    try:
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
            connection.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (a full disk) may leave the transaction open; it may also have
            # been rolled back by SQLite already, and a second ROLLBACK would hide the error.
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
    finally:
        if durable:
            connection.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")


def snapshot(connection: Connection):
    """A read-only transaction: every query in it sees the database as of one moment (on
    PostgreSQL, BEGIN alone would let each statement see a newer one)."""
    if isinstance(connection, sqlite3.Connection):
        return _deferred(connection)
    return connection.snapshot()


@contextmanager
def _deferred(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    connection.execute("BEGIN")
    try:
        yield connection
    finally:
        connection.execute("COMMIT")


def init_db(connection: sqlite3.Connection, schema: str) -> None:
    """Create a fresh SQLite database from schema.sql, or migrate an existing one in place.

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


def schema_text(name: str = "schema.sql") -> str:
    """schema.sql (SQLite's) or schema-postgres.sql."""
    return (RESOURCES / name).read_text(encoding="utf-8")


def init_app(app: Flask) -> None:
    """Make sure the database exists and is current before the first request; on PostgreSQL,
    also take the servers' shared secret key unless REPO_SECRET_KEY gave one."""
    app.extensions["db"] = threading.local()
    app.teardown_appcontext(_end_request)
    if app.config.get("DATABASE_URL"):
        from . import postgres

        database = app.extensions["postgres"] = postgres.Database(
            app.config["DATABASE_URL"], app.config["THREADS"]
        )
        secret = database.init(schema_text("schema-postgres.sql"))
        app.config["SECRET_KEY"] = app.config.get("SECRET_KEY") or secret
        return
    connection = connect(app.config["DATABASE"])
    try:
        init_db(connection, schema_text())
    finally:
        connection.close()


# --- copies to and from a SQLite file (backup and restore, on either engine) ---------------

BATCH = 500  # rows per executemany: a table is never held in memory whole


# Tables of state derived from the rest, which copies leave out: a new database starts its own.
DERIVED_TABLES = ("access_generation",)


def tables() -> list[str]:
    """The tables of the current schema that hold data, in the order schema.sql makes them,
    which is an order in which foreign keys are satisfied."""
    scratch = sqlite3.connect(":memory:")
    try:
        scratch.executescript(schema_text())
        rows = scratch.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")
        return [name for (name,) in rows if name not in DERIVED_TABLES]
    finally:
        scratch.close()


def _columns(connection: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in connection.execute(f"SELECT * FROM pragma_table_info('{table}')")]


def _copy(source: Connection, target: Connection, file: sqlite3.Connection) -> None:
    """Every table's rows from `source` into `target`, batch by batch; `file` is the SQLite
    side, whose columns name what is copied."""
    for table in tables():
        names = _columns(file, table)
        columns = ", ".join(names)
        rows = _stream(source, f"SELECT {columns} FROM {table}")
        insert = f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' for _ in names)})"
        while batch := list(islice(rows, BATCH)):
            target.executemany(insert, [tuple(row) for row in batch])


def _stream(connection: Connection, sql: str) -> Iterator[Any]:
    """A query's rows as they come: sqlite3 steps through them, PostgreSQL's are fetched a
    batch at a time (a cursor of psycopg's own would hold them all)."""
    if dialect(connection) == "sqlite":
        return iter(connection.execute(sql))
    return connection.stream(sql)


def copy_to_sqlite(connection: Connection, path: str | Path) -> None:
    """Write every table of the database into a new SQLite file made from schema.sql, from one
    snapshot: a backup, on either engine, is such a file (plus the blobs)."""
    if Path(path).exists():
        raise FileExistsError(f"{path} exists: a copy goes into a new file")
    target = connect(str(path))
    try:
        init_db(target, schema_text())
        with snapshot(connection), transaction(target, durable=True):
            _copy(connection, target, target)
        # One self-contained file, without a -wal beside it.
        target.execute("PRAGMA journal_mode = DELETE")
    finally:
        target.close()


def copy_from_sqlite(connection: Connection, path: str | Path) -> None:
    """Load a SQLite file of the current schema (copy_to_sqlite's, or a SQLite data dir's
    database) into the empty database of `connection`, on either engine. ValueError when the
    file is of another schema version or the database holds data already."""
    source = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True,
                             isolation_level=None)  # fmt: skip
    try:
        version = source.execute("PRAGMA user_version").fetchone()[0]
        if version != len(MIGRATIONS) + 1:
            raise ValueError(
                f"{path} is of schema version {version}, not {len(MIGRATIONS) + 1}: start a"
                " server of this version on a SQLite data dir holding it, which migrates it,"
                " and back that up"
            )
        with snapshot(source), transaction(connection, durable=True):
            for table in tables():
                if connection.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():
                    raise ValueError(f"The database is not empty (table {table}): restore into"
                                     " a new one")  # fmt: skip
            _copy(source, connection, source)
            if dialect(connection) == "postgresql":
                connection.reset_identities()
    finally:
        source.close()
