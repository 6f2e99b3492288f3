"""The migrations of each engine: each brings a database one version further, in a
transaction of its own (sqlite-utils' named migrations). schema.sql and schema-postgres.sql are
always the newest schema, so a fresh database skips them all; a test keeps the two in step."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .db import Connection


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


# Version 7: what moves access_generation (schema.sql says why), table by table.
_ACCESS_EVENTS = {
    "tokens": ("UPDATE OF hash, user_id, channel_id, scope, expires, revoked", "DELETE"),
    "users": ("UPDATE OF name, is_admin, disabled", "DELETE"),
    "channels": ("INSERT", "UPDATE", "DELETE"),
    "memberships": ("INSERT", "UPDATE", "DELETE"),
    "mirrors": ("INSERT", "DELETE"),
}
_BUMP = "UPDATE access_generation SET generation = generation + 1"


def _add_access_generation(connection: sqlite3.Connection) -> None:
    """Version 7: the access generation and its triggers, one per table and event."""
    connection.execute("CREATE TABLE access_generation (id INTEGER PRIMARY KEY"
                       " CHECK (id = 1), generation INTEGER NOT NULL)")  # fmt: skip
    connection.execute("INSERT INTO access_generation (id, generation) VALUES (1, 0)")
    for table, events in _ACCESS_EVENTS.items():
        for event in events:
            name = f"{table}_access_{event.split()[0].lower()}"
            connection.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table}"
                               f" BEGIN {_BUMP}; END")  # fmt: skip


def _add_access_generation_postgres(connection: Connection) -> None:
    """Version 7 on PostgreSQL: the same, one statement trigger per table."""
    connection.execute(
        "CREATE TABLE access_generation (id BIGINT PRIMARY KEY CHECK (id = 1),"
        " generation BIGINT NOT NULL);"
        " INSERT INTO access_generation (id, generation) VALUES (1, 0);"
        " CREATE FUNCTION access_changed() RETURNS trigger LANGUAGE plpgsql AS"
        f" $$ BEGIN {_BUMP}; RETURN NULL; END $$"
    )
    for table, events in _ACCESS_EVENTS.items():
        connection.execute(
            f"CREATE TRIGGER {table}_access AFTER {' OR '.join(events)} ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION access_changed()"
        )


# The tables of version 8 (dated snapshots), as schema.sql had them then; INTEGER becomes BIGINT
# on PostgreSQL, where a key is an identity column.
_HISTORY_TABLES = """
CREATE TABLE file_events (
    id              INTEGER PRIMARY KEY,
    channel_id      INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    at              TEXT NOT NULL,
    event           TEXT NOT NULL CHECK (event IN ('upload', 'yank', 'unyank', 'delete')),
    actor_id        INTEGER REFERENCES users(id) ON DELETE SET NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('pypi', 'cran')),
    package         TEXT NOT NULL,
    display_name    TEXT NOT NULL,
    subdir          TEXT NOT NULL,
    version         TEXT NOT NULL,
    filename        TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    size            INTEGER NOT NULL,
    uploader_id     INTEGER REFERENCES users(id) ON DELETE SET NULL,
    uploaded        TEXT NOT NULL,
    yanked          INTEGER NOT NULL,
    yanked_reason   TEXT,
    requires_python TEXT,
    metadata_sha256 TEXT,
    metadata        TEXT NOT NULL
);
CREATE INDEX file_events_package ON file_events(channel_id, kind, package, at);
CREATE INDEX file_events_file ON file_events(channel_id, filename);
CREATE INDEX file_events_at ON file_events(channel_id, at);
CREATE INDEX file_events_sha256 ON file_events(sha256);
CREATE TABLE mirror_listings (
    file_id INTEGER NOT NULL REFERENCES mirror_files(id) ON DELETE CASCADE,
    since   TEXT NOT NULL,
    until   TEXT,
    PRIMARY KEY (file_id, since)
);
"""

# What the history knows of the files there before it: each one's upload, at its upload time
# and by its uploader, and a yank at the upgrade for each one yanked then (when, and by whom,
# is not known); each listed upstream CRAN file, listed since the upgrade.
_HISTORY_BEFORE = (
    "INSERT INTO file_events (channel_id, at, event, actor_id, kind, package, display_name,"
    " subdir, version, filename, sha256, size, uploader_id, uploaded, yanked, yanked_reason,"
    " requires_python, metadata_sha256, metadata)"
    " SELECT files.channel_id, {at}, {event}, {actor}, files.kind, packages.name,"
    " packages.display_name, files.subdir, files.version, files.filename, files.sha256,"
    " files.size, files.uploader_id, files.uploaded, {yanked}, {reason},"
    " files.requires_python, files.metadata_sha256, files.metadata"
    " FROM files JOIN packages ON packages.id = files.package_id{where} ORDER BY files.id"
)


def _record_history_before(connection: Connection) -> None:
    from .db import now

    upgrade = now()
    uploads = {"at": "files.uploaded", "event": "'upload'", "actor": "files.uploader_id",
               "yanked": "0", "reason": "NULL", "where": ""}  # fmt: skip
    yanks = {"at": "?", "event": "'yank'", "actor": "NULL", "yanked": "1",
             "reason": "files.yanked_reason", "where": " WHERE files.yanked = 1"}  # fmt: skip
    connection.execute(_HISTORY_BEFORE.format(**uploads))
    connection.execute(_HISTORY_BEFORE.format(**yanks), (upgrade,))
    connection.execute(
        "INSERT INTO mirror_listings (file_id, since) SELECT mirror_files.id, ? FROM mirror_files"
        " JOIN mirrors ON mirrors.id = mirror_files.mirror_id"
        " WHERE mirrors.kind = 'cran' AND mirror_files.listed = 1",
        (upgrade,),
    )


def _add_history(connection: sqlite3.Connection) -> None:
    """Version 8: the history of each channel's files, and when a CRAN-like upstream listed
    each file, for dated snapshots."""
    for statement in _HISTORY_TABLES.split(";"):
        if statement.strip():
            connection.execute(statement)
    _record_history_before(connection)


def _add_history_postgres(connection: Connection) -> None:
    """Version 8 on PostgreSQL: the same."""
    tables = _HISTORY_TABLES.replace(
        "INTEGER PRIMARY KEY", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    )
    connection.execute(tables.replace("INTEGER", "BIGINT"))
    _record_history_before(connection)


# SQLITE[n] brings a database at user_version n+1 to n+2; schema.sql is always the newest
# schema, so a fresh database skips them all.
SQLITE: list[Callable[[sqlite3.Connection], None]] = [
    _add_auth_failures,
    _add_sessions_and_used_filenames,
    _add_mirrors,
    _scope_every_token,
    _add_mirror_sync,
    _add_access_generation,
    _add_history,
]

# PostgreSQL came at version 6 (schema-postgres.sql's then): POSTGRES[n] brings a database at
# schema_version n+6 to n+7, the same step as SQLITE[n+5].
POSTGRES_FIRST = 6
POSTGRES: list[Callable[[Connection], None]] = [
    _add_access_generation_postgres,
    _add_history_postgres,
]
