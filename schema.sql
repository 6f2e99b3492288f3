-- The whole current schema of repo's database. A fresh database runs this file; an older one
-- is brought here by the migrations in repo/db.py. Never DROP a table here.

CREATE TABLE IF NOT EXISTS users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created       TEXT NOT NULL
);

-- revision grows with every change to the channel's packages: index pages and their ETags are
-- keyed on it, so an upload is visible to the very next request.
CREATE TABLE IF NOT EXISTS channels (
    id       INTEGER PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    public   INTEGER NOT NULL DEFAULT 0,
    revision INTEGER NOT NULL DEFAULT 0,
    created  TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS memberships (
    channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('read', 'write', 'owner')),
    PRIMARY KEY (channel_id, user_id)
);

-- A user token acts with its user's rights; a channel token is bound to one channel with the
-- scope read or write, and never exceeds its user's current role there. Only the sha256 of a
-- token is stored.
CREATE TABLE IF NOT EXISTS tokens (
    id         INTEGER PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    channel_id INTEGER REFERENCES channels(id) ON DELETE CASCADE,
    scope      TEXT CHECK (scope IN ('read', 'write')),
    label      TEXT NOT NULL DEFAULT '',
    created    TEXT NOT NULL,
    expires    TEXT,
    last_used  TEXT,
    revoked    TEXT,
    CHECK ((channel_id IS NULL) = (scope IS NULL))
);
CREATE INDEX IF NOT EXISTS tokens_user ON tokens(user_id);

-- One row per project (pypi) or R package (cran) in a channel; name is the normalized name.
CREATE TABLE IF NOT EXISTS packages (
    id           INTEGER PRIMARY KEY,
    channel_id   INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('pypi', 'cran')),
    name         TEXT NOT NULL,
    display_name TEXT NOT NULL,
    UNIQUE (channel_id, kind, name)
);

-- One row per uploaded file. subdir places a file inside its ecosystem's tree (empty for
-- pypi; src/contrib or a bin/... path for cran). metadata holds the core metadata as JSON;
-- metadata_sha256 names the blob of a wheel's METADATA served as PEP 658 `.metadata`.
CREATE TABLE IF NOT EXISTS files (
    id              INTEGER PRIMARY KEY,
    package_id      INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
    channel_id      INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL CHECK (kind IN ('pypi', 'cran')),
    subdir          TEXT NOT NULL DEFAULT '',
    version         TEXT NOT NULL,
    filename        TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    size            INTEGER NOT NULL,
    uploader_id     INTEGER REFERENCES users(id) ON DELETE SET NULL,
    uploaded        TEXT NOT NULL,
    yanked          INTEGER NOT NULL DEFAULT 0,
    yanked_reason   TEXT,
    requires_python TEXT,
    metadata_sha256 TEXT,
    metadata        TEXT NOT NULL DEFAULT '{}',
    UNIQUE (channel_id, kind, subdir, filename)
);
CREATE INDEX IF NOT EXISTS files_package ON files(package_id);
CREATE INDEX IF NOT EXISTS files_sha256 ON files(sha256);

-- Failed authentications per client address in fixed windows, for throttling (429).
CREATE TABLE IF NOT EXISTS auth_failures (
    address      TEXT PRIMARY KEY,
    window_start REAL NOT NULL,
    count        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS auth_failures_window ON auth_failures(window_start);

-- Signed-in web UI sessions. The cookie carries a random id; only its sha256 is kept, so signing
-- out (deleting the row) ends the session everywhere, and `expires` is an absolute end.
CREATE TABLE IF NOT EXISTS sessions (
    hash    TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created TEXT NOT NULL,
    expires TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_id);

-- The name and content of every file a channel deleted: PyPI's rule that a filename, once
-- used, never holds other bytes (an identical re-upload restores the file).
CREATE TABLE IF NOT EXISTS used_filenames (
    channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('pypi', 'cran')),
    subdir     TEXT NOT NULL,
    filename   TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    PRIMARY KEY (channel_id, kind, subdir, filename)
);

PRAGMA user_version = 3;
