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
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    public      INTEGER NOT NULL DEFAULT 0,
    revision    INTEGER NOT NULL DEFAULT 0,
    created     TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS memberships (
    channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('read', 'write', 'owner')),
    PRIMARY KEY (channel_id, user_id)
);

-- Every token has a scope. A channel token is bound to one channel with the scope read or
-- write; a user token acts on all its user's channels with the scope read, write or manage
-- (manage: as far as the owner role, plus minting tokens and creating channels). A token
-- never exceeds its user's current role. Only the sha256 of a token is stored.
CREATE TABLE IF NOT EXISTS tokens (
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

-- An upstream index a channel mirrors (a pull-through cache), at most one per side. The
-- credentials are sent to the source's host only and never shown or logged; the rest of the
-- row is the upstream's health (last success, last error, the circuit breaker). `quota`:
-- bytes of cached mirror-only files kept (least recently downloaded evicted first, R17);
-- `min_age`: seconds an upstream file's upload-time must be past to be offered (R21). An active
-- mirror's sync prefetches `sync_list` (JSON: requirements, or R package names) every
-- `sync_every` seconds; `next_sync` is when it is due (epoch seconds), `sync_result` its last say.
CREATE TABLE IF NOT EXISTS mirrors (
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
    sync_list     TEXT NOT NULL DEFAULT '[]',
    sync_every    INTEGER,
    next_sync     REAL NOT NULL DEFAULT 0,
    last_sync     TEXT,
    sync_result   TEXT,
    UNIQUE (channel_id, kind)
);

-- What the upstream last said of one project page (pypi: the normalized name) or one index
-- (cran: the contrib directory, or src/contrib/Meta/archive.rds): its validators and serial
-- (pypi: the upstream's; cran: the mirror's own count of changes to its stored indexes, which
-- names the channel's index set), when it was last checked (epoch seconds), when its content
-- last changed, and its PEP 792 status.
CREATE TABLE IF NOT EXISTS mirror_pages (
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
CREATE TABLE IF NOT EXISTS mirror_files (
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
CREATE INDEX IF NOT EXISTS mirror_files_project ON mirror_files(mirror_id, project);
CREATE INDEX IF NOT EXISTS mirror_files_sha256 ON mirror_files(sha256);

-- Single flight across threads and worker processes: whoever holds the lease on a key (a
-- file, a page) fetches it; the others wait for it or read the file it is writing.
CREATE TABLE IF NOT EXISTS mirror_leases (
    key     TEXT PRIMARY KEY,
    holder  TEXT NOT NULL,
    expires REAL NOT NULL,
    path    TEXT
);

-- Dependency confusion: names (or prefixes, 'acme-*') upstream is never asked for, and the
-- private names whose upstream releases an owner chose to merge in.
CREATE TABLE IF NOT EXISTS mirror_rules (
    channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('pypi', 'cran')),
    pattern    TEXT NOT NULL,
    rule       TEXT NOT NULL CHECK (rule IN ('reserve', 'merge')),
    PRIMARY KEY (channel_id, kind, pattern, rule)
);

-- One number that moves with every change to what a request's token check reads (a token's
-- state, its user, a channel and its revision, a membership, a channel becoming a mirror):
-- each process keeps the answers of that check keyed on it (repo/access.py), and asks only
-- for this one row while it stands, so a change made through any server or worker is in
-- force at everyone's next request. Not data: a backup leaves it out, a restore starts it anew.
CREATE TABLE IF NOT EXISTS access_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT OR IGNORE INTO access_generation (id, generation) VALUES (1, 0);
CREATE TRIGGER IF NOT EXISTS tokens_access_update
    AFTER UPDATE OF hash, user_id, channel_id, scope, expires, revoked ON tokens
    BEGIN UPDATE access_generation SET generation = generation + 1; END;
CREATE TRIGGER IF NOT EXISTS tokens_access_delete AFTER DELETE ON tokens
    BEGIN UPDATE access_generation SET generation = generation + 1; END;
CREATE TRIGGER IF NOT EXISTS users_access_update
    AFTER UPDATE OF name, is_admin, disabled ON users
    BEGIN UPDATE access_generation SET generation = generation + 1; END;
CREATE TRIGGER IF NOT EXISTS users_access_delete AFTER DELETE ON users
    BEGIN UPDATE access_generation SET generation = generation + 1; END;
CREATE TRIGGER IF NOT EXISTS channels_access_insert AFTER INSERT ON channels
    BEGIN UPDATE access_generation SET generation = generation + 1; END;
CREATE TRIGGER IF NOT EXISTS channels_access_update AFTER UPDATE ON channels
    BEGIN UPDATE access_generation SET generation = generation + 1; END;
CREATE TRIGGER IF NOT EXISTS channels_access_delete AFTER DELETE ON channels
    BEGIN UPDATE access_generation SET generation = generation + 1; END;
CREATE TRIGGER IF NOT EXISTS memberships_access_insert AFTER INSERT ON memberships
    BEGIN UPDATE access_generation SET generation = generation + 1; END;
CREATE TRIGGER IF NOT EXISTS memberships_access_update AFTER UPDATE ON memberships
    BEGIN UPDATE access_generation SET generation = generation + 1; END;
CREATE TRIGGER IF NOT EXISTS memberships_access_delete AFTER DELETE ON memberships
    BEGIN UPDATE access_generation SET generation = generation + 1; END;
CREATE TRIGGER IF NOT EXISTS mirrors_access_insert AFTER INSERT ON mirrors
    BEGIN UPDATE access_generation SET generation = generation + 1; END;
CREATE TRIGGER IF NOT EXISTS mirrors_access_delete AFTER DELETE ON mirrors
    BEGIN UPDATE access_generation SET generation = generation + 1; END;

-- Every upload, yank, unyank and delete of a channel's files, each with the file as it was
-- then (the columns of files, its package's normalized and display names): a dated snapshot
-- (repo/snapshots) shows each file as its latest event at or before the instant left it,
-- unless that event deleted it. `actor_id`: who did it (NULL for the console, or when gone).
-- The blobs an event names are kept, so a snapshot from before a delete still serves them.
CREATE TABLE IF NOT EXISTS file_events (
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
CREATE INDEX IF NOT EXISTS file_events_package ON file_events(channel_id, kind, package, at);
CREATE INDEX IF NOT EXISTS file_events_file ON file_events(channel_id, filename);
CREATE INDEX IF NOT EXISTS file_events_at ON file_events(channel_id, at);
CREATE INDEX IF NOT EXISTS file_events_sha256 ON file_events(sha256);

-- When a CRAN-like upstream's index listed a file: from the fetch that first showed it to the
-- one that no longer did (NULL: still listed). A dated snapshot of a mirror channel's R side
-- lists what the indexes the mirror saw listed at that instant.
CREATE TABLE IF NOT EXISTS mirror_listings (
    file_id INTEGER NOT NULL REFERENCES mirror_files(id) ON DELETE CASCADE,
    since   TEXT NOT NULL,
    until   TEXT,
    PRIMARY KEY (file_id, since)
);

PRAGMA user_version = 8;
