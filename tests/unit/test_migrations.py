"""The database schema: a fresh database is at schema.sql's version, and starting twice is
harmless."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from repo import accounts, create_app, db, tokens

SCHEMA = Path(__file__).parents[2] / "schema.sql"
# SQLite's schema and migrations: test_postgres.py has PostgreSQL's, and their parity.
pytestmark = pytest.mark.embedded_only


def schema_version() -> int:
    versions = re.findall(r"^PRAGMA user_version = (\d+);", SCHEMA.read_text(), re.MULTILINE)
    assert len(versions) == 1, versions
    return int(versions[0])


def shape(connection) -> list[tuple]:
    return connection.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
    ).fetchall()


def test_schema_ends_by_setting_its_version():
    assert SCHEMA.read_text().rstrip().endswith(f"PRAGMA user_version = {schema_version()};")


def test_fresh_database_has_the_schema_version(tmp_path):
    connection = db.connect(str(tmp_path / "fresh.sqlite3"))

    db.init_db(connection, SCHEMA.read_text())

    assert connection.execute("PRAGMA user_version").fetchone()[0] == schema_version()
    assert schema_version() == len(db.MIGRATIONS) + 1
    tables = {row[1] for row in shape(connection) if row[0] == "table"}
    assert tables == {
        "users",
        "channels",
        "memberships",
        "tokens",
        "packages",
        "files",
        "auth_failures",
        "sessions",
        "used_filenames",
        "mirrors",
        "mirror_pages",
        "mirror_files",
        "mirror_leases",
        "mirror_rules",
        "access_generation",
        "file_events",
        "mirror_listings",
    }


def test_init_twice_is_harmless(tmp_path):
    connection = db.connect(str(tmp_path / "twice.sqlite3"))
    db.init_db(connection, SCHEMA.read_text())
    accounts.create_user(connection, "alice", "alice-password")
    before = shape(connection)

    db.init_db(connection, SCHEMA.read_text())

    assert shape(connection) == before
    assert connection.execute("PRAGMA user_version").fetchone()[0] == schema_version()
    assert accounts.user_count(connection) == 1


def test_starting_the_app_twice_keeps_the_data(tmp_path):
    config = {"DATA_DIR": str(tmp_path / "data"), "TESTING": True}
    with create_app(config).app_context():
        accounts.create_user(db.get_db(), "alice", "alice-password")

    app = create_app(config)

    with app.app_context():
        assert accounts.user_count(db.get_db()) == 1
        assert db.get_db().execute("PRAGMA user_version").fetchone()[0] == schema_version()


OLD_SCHEMAS = sorted((Path(__file__).parents[1] / "fixtures" / "schemas").glob("v*.sql"))


def columns(connection) -> dict[str, list[tuple]]:
    """Each table's columns (name, type, not null, default, primary key), its indexes and
    its triggers (their SQL, spaces aside)."""
    tables = [row[1] for row in shape(connection) if row[0] == "table"]
    return {
        table: connection.execute(f"SELECT name, type, \"notnull\", dflt_value, pk"
                                  f" FROM pragma_table_info('{table}')").fetchall()
        + connection.execute(f"SELECT name FROM pragma_index_list('{table}')").fetchall()
        + sorted(" ".join(sql.split()) for (sql,) in connection.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,)))
        for table in tables
    }  # fmt: skip


def test_every_old_schema_migrates_to_the_fresh_one(tmp_path):
    assert OLD_SCHEMAS, "tests/fixtures/schemas holds the schema.sql of every old version"
    fresh = db.connect(str(tmp_path / "fresh.sqlite3"))
    db.init_db(fresh, SCHEMA.read_text())
    for old in OLD_SCHEMAS:
        connection = db.connect(str(tmp_path / f"{old.stem}.sqlite3"))
        connection.executescript(old.read_text())
        accounts.create_user(connection, "alice", "alice-password")

        db.init_db(connection, SCHEMA.read_text())

        assert connection.execute("PRAGMA user_version").fetchone()[0] == schema_version()
        assert columns(connection) == columns(fresh)
        assert accounts.user_count(connection) == 1


def fill_every_table(connection) -> dict[str, int]:
    """A row in every table of whatever schema `connection` has; return the rows per table."""
    alice = accounts.create_user(connection, "bob", "bob-password")
    # Raw SQL: the accounts functions write the newest schema's columns.
    channel = connection.execute(
        "INSERT INTO channels (name, created) VALUES ('dev', '2026-01-01T00:00:00Z')"
    ).lastrowid
    connection.execute("INSERT INTO memberships VALUES (?, ?, 'owner')", (channel, alice))
    connection.execute(
        "INSERT INTO tokens (hash, user_id, channel_id, scope, label, created)"
        " VALUES (?, ?, ?, 'read', 'ci', '2026-01-01T00:00:00Z')",
        ("d" * 64, alice, channel),
    )
    connection.execute(
        "INSERT INTO packages (channel_id, kind, name, display_name) VALUES (?, 'pypi', 'x', 'X')",
        (channel,),
    )
    connection.execute(
        "INSERT INTO files (package_id, channel_id, kind, version, filename, sha256, size,"
        " uploader_id, uploaded, metadata) VALUES (1, ?, 'pypi', '1.0', 'x-1.0.tar.gz', ?, 3,"
        " ?, '2026-01-01T00:00:00.000000Z', '{\"summary\": \"kept\"}')",
        (channel, "a" * 64, alice),
    )
    tables = [row[1] for row in shape(connection) if row[0] == "table"]
    if "auth_failures" in tables:
        connection.execute("INSERT INTO auth_failures VALUES ('192.0.2.1', 1.0, 3)")
    if "sessions" in tables:
        connection.execute(
            "INSERT INTO sessions VALUES (?, ?, '2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z')",
            ("b" * 64, alice),
        )
    if "used_filenames" in tables:
        connection.execute(
            "INSERT INTO used_filenames VALUES (?, 'pypi', '', 'x-0.9.tar.gz', ?)",
            (channel, "c" * 64),
        )
    if "mirrors" in tables:
        fill_mirror_tables(connection, channel)
    return {
        table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables
    }


def fill_mirror_tables(connection, channel: int) -> None:
    """A row in each table of version 4's mirrors."""
    mirror = connection.execute(
        "INSERT INTO mirrors (channel_id, kind, source, ttl, created)"
        " VALUES (?, 'pypi', 'https://pypi.org/simple/', 600, '2026-01-01T00:00:00Z')",
        (channel,),
    ).lastrowid
    connection.execute(
        "INSERT INTO mirror_pages (mirror_id, key, state, checked, changed)"
        " VALUES (?, 'x', 'found', 1.0, '2026-01-01T00:00:00Z')",
        (mirror,),
    )
    connection.execute(
        "INSERT INTO mirror_files (mirror_id, project, filename, version, url)"
        " VALUES (?, 'x', 'x-2.0.tar.gz', '2.0', 'https://files.example/x-2.0.tar.gz')",
        (mirror,),
    )
    connection.execute("INSERT INTO mirror_leases VALUES ('file:x', 'worker', 1.0, NULL)")
    connection.execute(
        "INSERT INTO mirror_rules VALUES (?, 'pypi', 'acme-*', 'reserve')", (channel,)
    )


def test_every_old_schema_keeps_the_data_of_every_table(tmp_path):
    for old in OLD_SCHEMAS:
        connection = db.connect(str(tmp_path / f"{old.stem}-full.sqlite3"))
        connection.executescript(old.read_text())
        counts = fill_every_table(connection)
        assert all(counts.values()), counts

        db.init_db(connection, SCHEMA.read_text())

        for table, count in counts.items():
            assert connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == count
        row = connection.execute("SELECT * FROM files").fetchone()
        assert (row["filename"], row["sha256"], row["metadata"]) == (
            "x-1.0.tar.gz",
            "a" * 64,
            '{"summary": "kept"}',
        )
        token = connection.execute("SELECT label, scope FROM tokens").fetchone()
        assert tuple(token) == ("ci", "read")


def test_version_4_user_tokens_become_manage_and_channels_get_a_description(tmp_path):
    connection = db.connect(str(tmp_path / "v4.sqlite3"))
    connection.executescript((OLD_SCHEMAS[0].parent / "v4.sql").read_text())
    user = accounts.create_user(connection, "alice", "alice-password")
    fill_every_table(connection)
    secret = tokens.generate()
    connection.execute(
        "INSERT INTO tokens (hash, user_id, label, created, last_used) VALUES"
        " (?, ?, 'laptop', '2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z')",
        (tokens.digest(secret), user),
    )

    db.init_db(connection, SCHEMA.read_text())

    listed = {row["label"]: row for row in accounts.list_tokens(connection)}
    assert (listed["laptop"]["scope"], listed["laptop"]["channel"]) == ("manage", None)
    assert listed["laptop"]["last_used"] == "2026-01-02T00:00:00Z"
    assert (listed["ci"]["scope"], listed["ci"]["channel"]) == ("read", "dev")
    assert accounts.check_token(connection, secret).manages
    assert connection.execute("SELECT description FROM channels").fetchone()[0] == ""


def test_a_version_5_token_always_has_a_scope_and_a_channel_token_never_manages(tmp_path):
    connection = db.connect(str(tmp_path / "v5.sqlite3"))
    db.init_db(connection, SCHEMA.read_text())
    user = accounts.create_user(connection, "alice", "alice-password")
    channel = accounts.create_channel(connection, "dev", user)
    insert = (
        "INSERT INTO tokens (hash, user_id, channel_id, scope, created) VALUES (?, ?, ?, ?, '')"
    )

    for number, (channel_id, scope) in enumerate([(None, None), (channel, "manage"),
                                                  (None, "owner")]):  # fmt: skip
        with pytest.raises(sqlite3.IntegrityError):
            connection.execute(insert, (str(number), user, channel_id, scope))


def test_a_version_7_database_gets_the_history_of_the_files_it_holds(tmp_path):
    connection = db.connect(str(tmp_path / "v7.sqlite3"))
    connection.executescript((OLD_SCHEMAS[0].parent / "v7.sql").read_text())
    fill_every_table(connection)
    connection.execute("UPDATE files SET yanked = 1, yanked_reason = 'broken'")
    connection.execute("UPDATE mirrors SET kind = 'cran'")

    db.init_db(connection, SCHEMA.read_text())

    events = connection.execute(
        "SELECT event, at, package, display_name, filename, yanked, yanked_reason, actor_id"
        " FROM file_events ORDER BY id"
    ).fetchall()
    uploader = connection.execute("SELECT uploader_id FROM files").fetchone()[0]
    assert [tuple(row) for row in events] == [
        ("upload", "2026-01-01T00:00:00.000000Z", "x", "X", "x-1.0.tar.gz", 0, None, uploader),
        ("yank", events[1]["at"], "x", "X", "x-1.0.tar.gz", 1, "broken", None),
    ]
    assert events[1]["at"] >= db.now()[:10]  # yanked at the upgrade: when before, none knows
    listed = connection.execute("SELECT file_id, since, until FROM mirror_listings").fetchall()
    assert [(row["since"][:10], row["until"]) for row in listed] == [(db.now()[:10], None)]
