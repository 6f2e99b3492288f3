"""The database schema: a fresh database is at schema.sql's version, and starting twice is
harmless."""

from __future__ import annotations

import re
from pathlib import Path

from repo import accounts, create_app, db

SCHEMA = Path(__file__).parents[2] / "schema.sql"


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
    """Each table's columns (name, type, not null, default, primary key) and its indexes."""
    tables = [row[1] for row in shape(connection) if row[0] == "table"]
    return {
        table: connection.execute(f"SELECT name, type, \"notnull\", dflt_value, pk"
                                  f" FROM pragma_table_info('{table}')").fetchall()
        + connection.execute(f"SELECT name FROM pragma_index_list('{table}')").fetchall()
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
