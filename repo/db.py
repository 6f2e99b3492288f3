"""The SQLite connections: one per thread, kept open across requests, PRAGMAs at connect,
IMMEDIATE write transactions, and in-place migrations keyed on `PRAGMA user_version`."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from flask import Flask, current_app

from . import RESOURCES


def _add_auth_failures(connection: sqlite3.Connection) -> None:
    """Version 2: failed authentications per address, for throttling."""
    connection.execute(
        "CREATE TABLE auth_failures (address TEXT PRIMARY KEY, window_start REAL NOT NULL,"
        " count INTEGER NOT NULL)"
    )


def _add_sessions_and_used_filenames(connection: sqlite3.Connection) -> None:
    """Version 3: server-side UI sessions, the names of deleted files, and an index to prune
    the throttle table by."""
    connection.execute("CREATE INDEX auth_failures_window ON auth_failures(window_start)")
    connection.execute(
        "CREATE TABLE sessions (hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL"
        " REFERENCES users(id) ON DELETE CASCADE, created TEXT NOT NULL, expires TEXT NOT NULL)"
    )
    connection.execute("CREATE INDEX sessions_user ON sessions(user_id)")
    connection.execute(
        "CREATE TABLE used_filenames (channel_id INTEGER NOT NULL REFERENCES channels(id)"
        " ON DELETE CASCADE, kind TEXT NOT NULL CHECK (kind IN ('pypi', 'cran')),"
        " subdir TEXT NOT NULL, filename TEXT NOT NULL, sha256 TEXT NOT NULL,"
        " PRIMARY KEY (channel_id, kind, subdir, filename))"
    )


def _add_mirrors(connection: sqlite3.Connection) -> None:
    """Version 4: mirror channels (upstreams, their pages and files, fetch leases, rules)."""
    # One statement at a time: executescript() would commit the migration's transaction.
    sql = "\n".join(line for line in _MIRROR_TABLES.splitlines() if not line.startswith("--"))
    for statement in sql.split(";"):
        if statement.strip():
            connection.execute(statement)


# The tables of version 4, as schema.sql had them then (tests/fixtures/schemas/v4.sql).
_MIRROR_TABLES = """
-- An upstream index a channel mirrors (a pull-through cache), at most one per side. The
-- credentials are sent to the source's host only and never shown or logged; the rest of the
-- row is the upstream's health (last success, last error, the circuit breaker). `quota`:
-- bytes of cached mirror-only files kept (least recently downloaded evicted first, R17);
-- `min_age`: seconds an upstream file's upload-time must be past to be offered (R21).
CREATE TABLE mirrors (
    id            INTEGER PRIMARY KEY,
    channel_id    INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('pypi', 'cran')),
    source        TEXT NOT NULL,
    file_hosts    TEXT NOT NULL DEFAULT '[]',
    ttl           INTEGER NOT NULL,
    mode          TEXT NOT NULL DEFAULT 'passive' CHECK (mode IN ('passive', 'active')),
    username      TEXT,
    password      TEXT,
    created       TEXT NOT NULL,
    last_success  TEXT,
    last_error    TEXT,
    last_error_at TEXT,
    failures      INTEGER NOT NULL DEFAULT 0,
    open_until    REAL NOT NULL DEFAULT 0,
    open_for      REAL NOT NULL DEFAULT 0,
    quota         INTEGER,
    min_age       INTEGER,
    UNIQUE (channel_id, kind)
);

-- What the upstream last said of one project page (pypi: the normalized name) or one index
-- (cran: the contrib directory, or src/contrib/Meta/archive.rds): its validators and serial
-- (pypi: the upstream's; cran: the mirror's own count of changes to its stored indexes, which
-- names the channel's index set), when it was last checked (epoch seconds), when its content
-- last changed, and its PEP 792 status.
CREATE TABLE mirror_pages (
    mirror_id     INTEGER NOT NULL REFERENCES mirrors(id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('found', 'missing')),
    display_name  TEXT,
    etag          TEXT,
    last_modified TEXT,
    serial        INTEGER,
    checked       REAL NOT NULL,
    changed       TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'active',
    status_reason TEXT,
    PRIMARY KEY (mirror_id, key)
);

-- The files an upstream page or index lists, as it advertised them, and the blob once fetched
-- (blob_sha256 and metadata_blob stay NULL until then). `fields` holds a CRAN row verbatim.
CREATE TABLE mirror_files (
    id              INTEGER PRIMARY KEY,
    mirror_id       INTEGER NOT NULL REFERENCES mirrors(id) ON DELETE CASCADE,
    project         TEXT NOT NULL,
    subdir          TEXT NOT NULL DEFAULT '',
    filename        TEXT NOT NULL,
    version         TEXT NOT NULL,
    url             TEXT NOT NULL,
    sha256          TEXT,
    md5             TEXT,
    size            INTEGER,
    upload_time     TEXT,
    requires_python TEXT,
    yanked          INTEGER NOT NULL DEFAULT 0,
    yanked_reason   TEXT,
    core_metadata   TEXT,
    fields          TEXT NOT NULL DEFAULT '{}',
    listed          INTEGER NOT NULL DEFAULT 1,
    blob_sha256     TEXT,
    metadata_blob   TEXT,
    fetched         TEXT,
    last_download   TEXT,
    UNIQUE (mirror_id, subdir, filename)
);
CREATE INDEX mirror_files_project ON mirror_files(mirror_id, project);
CREATE INDEX mirror_files_sha256 ON mirror_files(sha256);

-- Single flight across threads and worker processes: whoever holds the lease on a key (a
-- file, a page) fetches it; the others wait for it or read the file it is writing.
CREATE TABLE mirror_leases (
    key     TEXT PRIMARY KEY,
    holder  TEXT NOT NULL,
    expires REAL NOT NULL,
    path    TEXT
);

-- Dependency confusion: names (or prefixes, 'acme-*') upstream is never asked for, and the
-- private names whose upstream releases an owner chose to merge in.
CREATE TABLE mirror_rules (
    channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('pypi', 'cran')),
    pattern    TEXT NOT NULL,
    rule       TEXT NOT NULL CHECK (rule IN ('reserve', 'merge')),
    PRIMARY KEY (channel_id, kind, pattern, rule)
);
"""


def _scope_every_token(connection: sqlite3.Connection) -> None:
    """Version 5: channel descriptions, and a scope on every token: the user tokens made
    before (scope NULL, their user's full rights) become `manage`. SQLite cannot change a
    CHECK in place, so the tokens table is rebuilt (no table references it)."""
    connection.execute("ALTER TABLE channels ADD COLUMN description TEXT NOT NULL DEFAULT ''")
    connection.execute(_TOKENS_V5)
    connection.execute(
        "INSERT INTO tokens_v5 (id, hash, user_id, channel_id, scope, label, created, expires,"
        " last_used, revoked) SELECT id, hash, user_id, channel_id, coalesce(scope, 'manage'),"
        " label, created, expires, last_used, revoked FROM tokens"
    )
    connection.execute("DROP TABLE tokens")
    connection.execute("ALTER TABLE tokens_v5 RENAME TO tokens")
    connection.execute("CREATE INDEX tokens_user ON tokens(user_id)")


# The tokens table of version 5, as schema.sql has it (a test compares the two).
_TOKENS_V5 = """
CREATE TABLE tokens_v5 (
    id         INTEGER PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    channel_id INTEGER REFERENCES channels(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL CHECK (scope IN ('read', 'write', 'manage')),
    label      TEXT NOT NULL DEFAULT '',
    created    TEXT NOT NULL,
    expires    TEXT,
    last_used  TEXT,
    revoked    TEXT,
    CHECK (channel_id IS NULL OR scope IN ('read', 'write'))
)
"""


def _add_mirror_sync(connection: sqlite3.Connection) -> None:
    """Version 6: an active mirror's scheduled sync (its allow-list, period and last run)."""
    columns = (
        "sync_list TEXT NOT NULL DEFAULT '[]'",
        "sync_every INTEGER",
        "next_sync REAL NOT NULL DEFAULT 0",
        "last_sync TEXT",
        "sync_result TEXT",
    )
    for column in columns:
        connection.execute(f"ALTER TABLE mirrors ADD COLUMN {column}")


# MIGRATIONS[n] brings a database at user_version n+1 to n+2; schema.sql is always the newest
# schema, so a fresh database skips them all.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _add_auth_failures,
    _add_sessions_and_used_filenames,
    _add_mirrors,
    _scope_every_token,
    _add_mirror_sync,
]


def now() -> str:
    """The current UTC time as stored: ISO 8601 with microseconds and a Z (PEP 700 format)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# WAL with synchronous=NORMAL never corrupts the database, but SQLite fsyncs the WAL only at
# checkpoints: a commit made just before a power cut can be rolled back. Good enough for
# sessions and throttle counts; a commit a client is told about is made durable (FULL).
SYNCHRONOUS = "NORMAL"


def connect(path: str) -> sqlite3.Connection:
    """A connection in autocommit mode with WAL, foreign keys and a busy timeout."""
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


def get_db() -> sqlite3.Connection:
    """This thread's connection to the app's database, opened on first use and then kept:
    opening one and setting its PRAGMAs costs more than answering a cached index page."""
    return connection_for(current_app)


def connection_for(app: Flask) -> sqlite3.Connection:
    """get_db() for code that runs outside a request context (the WSGI fast path)."""
    pool = app.extensions["db"]
    connection = getattr(pool, "connection", None)
    if connection is None:
        connection = pool.connection = connect(app.config["DATABASE"])
    return connection


def _end_request(_error: BaseException | None = None) -> None:
    """Never hand a connection with an open transaction to the thread's next request."""
    connection = getattr(current_app.extensions["db"], "connection", None)
    if connection is not None and connection.in_transaction:
        connection.rollback()


def close_db() -> None:
    """Close this thread's connection (before gunicorn forks its workers, say)."""
    connection = current_app.extensions["db"].__dict__.pop("connection", None)
    if connection is not None:
        connection.close()


@contextmanager
def transaction(connection: sqlite3.Connection,
                durable: bool = False) -> Iterator[sqlite3.Connection]:  # fmt: skip
    """A short write transaction. IMMEDIATE takes the write lock up front: with several
    gunicorn processes a deferred read-then-write can fail with SQLITE_BUSY at once.

    `durable` for a commit that a client is told about (an upload): in WAL mode,
    synchronous=FULL makes SQLite fsync the WAL before COMMIT returns, so the transaction
    survives a power cut. That is one fsync more per upload (which fsyncs its blob anyway);
    SQLite refuses to change the level inside a transaction, so it is set around it.
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


def schema_text() -> str:
    return (RESOURCES / "schema.sql").read_text(encoding="utf-8")


def init_app(app: Flask) -> None:
    """Make sure the database exists and is current before the first request."""
    app.extensions["db"] = threading.local()
    app.teardown_appcontext(_end_request)
    connection = connect(app.config["DATABASE"])
    try:
        init_db(connection, schema_text())
    finally:
        connection.close()
