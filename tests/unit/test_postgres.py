"""PostgreSQL behind repo.db's face, on the session's throwaway cluster whatever the stack: the
same tables as SQLite's, the schema made and migrated under the write lock by servers starting
at once, sqlite3's answers to the same SQL, write transactions one at a time, snapshots, a
server restart survived, a shared secret key, and copies to and from a SQLite file."""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from repo import access, accounts, create_app, db, files, migrations, postgres
from repo.errors import disk_full

from .. import conftest


@pytest.fixture
def url(request) -> str:
    """A new, empty database."""
    return conftest.STACK.postgres.fresh_database(request.node.name)


def start(tmp_path, url: str, name: str = "data", **settings):
    """A server on the database `url`, with a data dir of its own."""
    return create_app({"DATA_DIR": str(tmp_path / name), "TESTING": True, "DATABASE_URL": url,
                       **settings})  # fmt: skip


@pytest.fixture
def pg(tmp_path, url):
    """A connection of its own to an app's (migrated) PostgreSQL database."""
    connection = db.open_connection(start(tmp_path, url))
    yield connection
    connection.close()


@pytest.fixture
def lite(tmp_path):
    connection = db.connect(str(tmp_path / "lite.sqlite3"))
    db.init_db(connection, db.schema_text())
    yield connection
    connection.close()


# --- the schema -------------------------------------------------------------------------

# schema-postgres.sql as each older version had it, from 6, the first on PostgreSQL.
OLD_SCHEMAS = sorted((Path(__file__).parents[1] / "fixtures" / "schemas").glob("postgres-v*.sql"))

# Bookkeeping that SQLite keeps elsewhere: PRAGMA user_version, and files in the data dir.
POSTGRES_ONLY = {"schema_version", "server_secrets"}


def sqlite_shape(connection) -> dict:
    """Each table's columns (name, not null, primary key) and its index names."""
    shape = {}
    for table in (*db.tables(), *db.DERIVED_TABLES):
        columns = connection.execute(
            f"SELECT name, \"notnull\", pk FROM pragma_table_info('{table}')"
        )
        indexes = connection.execute(f"SELECT name FROM pragma_index_list('{table}')"
                                     " WHERE origin = 'c'")  # fmt: skip
        # A primary key is never NULL on PostgreSQL, nor in what repo writes on SQLite.
        shape[table] = ([(name, bool(notnull or pk), bool(pk)) for name, notnull, pk in columns],
                        sorted(row[0] for row in indexes))  # fmt: skip
    return shape


def postgres_shape(connection) -> dict:
    tables = connection.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    ).fetchall()
    shape = {}
    for (table,) in tables:
        columns = connection.execute(
            "SELECT column_name, is_nullable = 'NO', column_name IN (SELECT kcu.column_name"
            "  FROM information_schema.table_constraints AS tc"
            "  JOIN information_schema.key_column_usage AS kcu"
            "  ON kcu.constraint_name = tc.constraint_name AND kcu.table_name = tc.table_name"
            "  WHERE tc.table_name = ? AND tc.constraint_type = 'PRIMARY KEY')"
            " FROM information_schema.columns WHERE table_name = ?"
            " AND table_schema = current_schema() ORDER BY ordinal_position",
            (table, table),
        ).fetchall()
        indexes = connection.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = ? AND indexname NOT LIKE '%_pkey'"
            " AND indexname NOT LIKE '%_key'",
            (table,),
        ).fetchall()
        shape[table] = ([(name, bool(notnull), bool(pk)) for name, notnull, pk in columns],
                        sorted(row[0] for row in indexes))  # fmt: skip
    return shape


def test_both_schemas_have_the_same_tables_columns_keys_and_indexes(pg, lite):
    ours = postgres_shape(pg)

    assert set(ours) - set(db.tables()) - set(db.DERIVED_TABLES) == POSTGRES_ONLY
    assert {table: ours[table] for table in (*db.tables(), *db.DERIVED_TABLES)} == sqlite_shape(
        lite
    )


def event(table: str, kind: str, columns: str | None = None) -> tuple:
    """A trigger's table, event and columns ("UPDATE", "a, b"), in one comparable shape."""
    return table, kind, frozenset(filter(None, (columns or "").replace(",", " ").split()))


def access_events(connection) -> set[tuple]:
    """The events of the triggers of a PostgreSQL database."""
    return {event(*row) for row in connection.execute(
        "SELECT t.event_object_table, t.event_manipulation, string_agg(c.event_object_column,"
        " ',') FROM information_schema.triggers AS t"
        " LEFT JOIN information_schema.triggered_update_columns AS c"
        " ON c.trigger_name = t.trigger_name AND t.event_manipulation = 'UPDATE'"
        " WHERE t.trigger_schema = current_schema() GROUP BY 1, 2").fetchall()}  # fmt: skip


def test_both_schemas_move_the_access_generation_on_the_same_tables_and_events(pg, lite):
    sqlite_events = set()
    for table, sql in lite.execute("SELECT tbl_name, sql FROM sqlite_master"
                                   " WHERE type = 'trigger'"):  # fmt: skip
        kind, _, columns = " ".join(sql.split()).split(" AFTER ")[1].split(f" ON {table}")[0]\
            .partition(" OF ")  # fmt: skip
        sqlite_events.add(event(table, kind, columns))
    postgres_events = access_events(pg)

    assert {table for table, _, _ in sqlite_events} == {
        "tokens", "users", "channels", "memberships", "mirrors"}  # fmt: skip
    assert sqlite_events == postgres_events


def test_both_schemas_are_at_the_same_version(pg, lite):
    versions = [row[0] for row in pg.execute("SELECT version FROM schema_version")]

    assert versions == [lite.execute("PRAGMA user_version").fetchone()[0]]
    assert versions[0] == migrations.POSTGRES_FIRST + len(migrations.POSTGRES)


def test_the_app_makes_the_schema_in_an_empty_database_and_a_restart_keeps_the_data(tmp_path, url):
    with start(tmp_path, url).app_context():
        accounts.create_user(db.get_db(), "alice", "alice-password")

    with start(tmp_path, url, "again").app_context():
        assert accounts.user_count(db.get_db()) == 1
        assert db.get_db().execute("SELECT count(*) FROM schema_version").fetchone()[0] == 1


def test_a_database_at_an_older_version_is_migrated_once(tmp_path, url, monkeypatch):
    start(tmp_path, url)

    def add_a_column(connection):
        connection.execute("ALTER TABLE channels ADD COLUMN motto TEXT NOT NULL DEFAULT ''")

    monkeypatch.setattr(migrations, "POSTGRES", [*migrations.POSTGRES, add_a_column])
    apps = [start(tmp_path, url, f"s{number}") for number in range(2)]

    with apps[1].app_context():
        version = db.get_db().execute("SELECT version FROM schema_version").fetchone()[0]
        assert version == migrations.POSTGRES_FIRST + len(migrations.POSTGRES)
        assert db.get_db().execute("SELECT motto FROM channels").fetchall() == []


# A file uploaded and then yanked, before there was a history.
_OLD_FILE = (
    "INSERT INTO users (id, name, password_hash, created) VALUES (1, 'a', '', '');"
    " INSERT INTO channels (id, name, created) VALUES (1, 'c', '2026-01-01T00:00:00.000000Z');"
    " INSERT INTO packages (id, channel_id, kind, name, display_name)"
    "  VALUES (1, 1, 'pypi', 'demo', 'Demo');"
    " INSERT INTO files (package_id, channel_id, kind, version, filename, sha256, size,"
    "  uploader_id, uploaded, yanked, yanked_reason) VALUES (1, 1, 'pypi', '1.0',"
    "  'demo-1.0.tar.gz', 'ab', 3, 1, '2026-01-02T00:00:00.000000Z', 1, 'broken')"
)


@pytest.mark.parametrize("old_schema", OLD_SCHEMAS, ids=lambda path: path.stem)
def test_every_older_database_migrates_to_the_fresh_schema(tmp_path, pg, old_schema):
    assert len(OLD_SCHEMAS) >= 2, "tests/fixtures/schemas holds every older PostgreSQL schema"
    old = conftest.STACK.postgres.fresh_database(old_schema.stem.replace("-", "_"))
    with psycopg.connect(old, autocommit=True) as connection:
        connection.execute(old_schema.read_text())
        connection.execute(_OLD_FILE)

    migrated = db.open_connection(start(tmp_path, old, "old"))
    try:
        assert postgres_shape(migrated) == postgres_shape(pg)
        assert access_events(migrated) == access_events(pg)
        assert accounts.user_count(migrated) == 1
        events = migrated.execute(
            "SELECT event, at, package, filename, yanked, yanked_reason, actor_id"
            " FROM file_events ORDER BY id"
        ).fetchall()
        assert [tuple(row)[:3] for row in events] == [
            ("upload", "2026-01-02T00:00:00.000000Z", "demo"),
            ("yank", events[1]["at"], "demo"),
        ]
        assert events[1]["at"] > "2026-12"  # the upgrade's time: when it was yanked is unknown
        assert [tuple(row)[3:] for row in events] == [
            ("demo-1.0.tar.gz", 0, None, 1),
            ("demo-1.0.tar.gz", 1, "broken", None),
        ]
        assert migrated.execute("SELECT version FROM schema_version").fetchone()[0] == (
            migrations.POSTGRES_FIRST + len(migrations.POSTGRES))  # fmt: skip
    finally:
        migrated.close()


def test_servers_starting_at_once_on_an_empty_database_make_one_schema_and_share_a_key(
    tmp_path, url
):
    # What each server's start does to the database (db.init_app), four at the same moment.
    # Threads run only that: Flask's own set-up compiles its routes with `ast`, which CPython
    # 3.11 does not allow in two threads at once (SystemError: AST constructor recursion depth
    # mismatch); tests/e2e/test_scale_out.py starts real servers together.
    barrier = threading.Barrier(4)

    def server_start(_number: int) -> str:
        barrier.wait(10)
        return postgres.Database(url, threads=1).init(db.schema_text("schema-postgres.sql"))

    with ThreadPoolExecutor(4) as pool:
        keys = set(pool.map(server_start, range(4)))

    apps = [start(tmp_path, url, f"s{number}") for number in range(2)]
    assert len(keys) == 1 and {app.config["SECRET_KEY"] for app in apps} == keys
    with apps[0].app_context():
        assert db.get_db().execute("SELECT count(*) FROM schema_version").fetchone()[0] == 1
    assert not any((tmp_path / f"s{number}" / "secret_key").exists() for number in range(2))


def test_a_given_secret_key_wins_over_the_databases(tmp_path, url):
    shared = start(tmp_path, url).config["SECRET_KEY"]

    given = start(tmp_path, url, "other", SECRET_KEY="the-admins-own")

    assert len(shared) >= 64 and given.config["SECRET_KEY"] == "the-admins-own"


def test_the_first_admin_is_made_once_by_servers_starting_together(tmp_path, url):
    apps = [start(tmp_path, url, f"s{number}") for number in range(2)]
    made = []

    def first_start(app):
        with app.app_context():
            try:
                accounts.create_user(db.get_db(), "admin", "admin-password", admin=True)
                made.append(app)
            except accounts.Conflict:
                pass

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(first_start, apps))

    assert len(made) == 1


# --- the same answers as sqlite3 --------------------------------------------------------


def test_placeholders_are_translated_outside_literals_with_percent_doubled():
    sql = "SELECT '?', \"a?%\", ? FROM t WHERE x LIKE '%' || ? AND y = 'it''s ?'"

    assert postgres.translate(sql) == (
        "SELECT '?', \"a?%%\", %s FROM t WHERE x LIKE '%%' || %s AND y = 'it''s ?'"
    )
    assert postgres.numbered(sql) == (
        b"SELECT '?', \"a?%\", $1 FROM t WHERE x LIKE '%' || $2 AND y = 'it''s ?'"
    )
    for translated in (postgres.translate, postgres.numbered):
        with pytest.raises(ValueError, match="numbered"):
            translated("SELECT ?1")


def test_rows_answer_as_sqlite_rows_do(pg, lite):
    for connection in (pg, lite):
        user = accounts.create_user(connection, "alice", "alice-password")
        accounts.create_channel(connection, "dev", user, public=True)
    query = "SELECT id, name, public, ? AS flag, ? AS given FROM channels"

    rows = [connection.execute(query, (True, "x%y")).fetchone() for connection in (pg, lite)]

    assert [(row[0], row["name"], tuple(row)[2:], row.keys(), dict(row)) for row in rows] == [
        (rows[1][0], "dev", (1, 1, "x%y"), ["id", "name", "public", "flag", "given"],
         {"id": rows[1][0], "name": "dev", "public": 1, "flag": 1, "given": "x%y"})
    ] * 2  # fmt: skip


def test_the_same_queries_give_the_same_answers(pg, lite):
    answers = []
    for connection in (pg, lite):
        user = accounts.create_user(connection, "Bob", "bob-password", admin=True)
        accounts.create_channel(connection, "dev", user)
        accounts.create_token(connection, user)
        answers.append((
            accounts.get_user(connection, "BOB")["name"],
            [dict(row) for row in accounts.all_channels(connection)],
            [{**row, "created": None} for row in accounts.list_tokens(connection, user)],
            files.channel_packages(connection, 1, "X"),
        ))  # fmt: skip
    answers[0][1][0]["created"] = answers[1][1][0]["created"]

    assert answers[0] == answers[1]


def test_counts_and_null_values_answer_as_sqlite_does(pg, lite):
    answers = []
    for connection in (pg, lite):
        accounts.create_user(connection, "alice", "alice-password")
        update = "UPDATE users SET disabled = ? WHERE name = ?"
        answers.append((
            connection.execute(update, (False, "alice")).rowcount,
            connection.execute(update, (False, "nobody")).rowcount,
            tuple(connection.execute("SELECT coalesce(?, 'none'), CAST(? AS BIGINT) + 1",
                                     (None, 2**40)).fetchone()),
            connection.execute("SELECT name FROM users WHERE name = ?", ("bob",)).fetchall(),
        ))  # fmt: skip

    assert answers[0] == answers[1] == (1, 0, ("none", 2**40 + 1), [])


def prepared(connection, text: str) -> int:
    """How many statements this connection's session has prepared that start with `text`."""
    return connection.execute(
        f"SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '{text}%'"
    ).fetchone()[0]


def test_a_statement_with_values_is_prepared_once_and_outlives_rollbacks(pg):
    query = "SELECT count(*) FROM users WHERE name = ?"
    for _ in range(3):
        assert pg.execute(query, ("alice",)).fetchone()[0] == 0
    # psycopg, once it prepared statements of its own (those it runs often), deallocates
    # every statement of the session after a ROLLBACK.
    for _ in range(10):
        pg.execute("SELECT 1")
        with pytest.raises(ZeroDivisionError), db.transaction(pg):
            raise ZeroDivisionError
    pg.execute("SELECT 1")

    assert pg.execute(query, ("alice",)).fetchone()[0] == 0
    assert prepared(pg, "SELECT count(*) FROM users WHERE name = $1") == 1


def test_statements_beyond_the_prepared_ones_run_unprepared(pg, monkeypatch):
    monkeypatch.setattr(postgres, "PREPARED_STATEMENTS", 0)  # as if as many were prepared

    names = [pg.execute(f"SELECT ? || '{n}'", ("user",)).fetchone()[0] for n in range(3)]

    assert names == ["user0", "user1", "user2"]
    assert prepared(pg, "SELECT $1 ||") == 0


def test_a_unique_violation_is_repo_db_integrity_error(pg):
    accounts.create_user(pg, "alice", "alice-password")

    with pytest.raises(db.IntegrityError) as raised, db.transaction(pg):
        pg.execute("INSERT INTO users (name, password_hash, created) VALUES ('ALICE', '', '')")

    assert raised.value.sqlstate == "23505"
    assert not pg.in_transaction


def test_postgres_disk_full_is_recognised():
    assert disk_full(db.PostgresOperationalError("could not extend file", "53100"))
    assert not disk_full(db.PostgresOperationalError("connection lost"))


def test_a_failed_statement_caught_inside_a_transaction_fails_its_commit(pg):
    with pytest.raises(db.PostgresError, match="rolled back"), db.transaction(pg):
        pg.execute("INSERT INTO auth_failures VALUES ('a', 1.0, 1)")
        with pytest.raises(db.DatabaseError):
            pg.execute("SELECT no_such_column FROM users")

    assert pg.execute("SELECT count(*) FROM auth_failures").fetchone()[0] == 0


def test_deleting_ended_throttle_windows_can_go_through_the_index(pg):
    pg.execute("SET enable_seqscan = off")  # a table of a few rows is read whole otherwise

    plan = pg.execute("EXPLAIN DELETE FROM auth_failures WHERE window_start < ?", (1.0,))

    assert "auth_failures_window" in " ".join(row[0] for row in plan)


# --- transactions -----------------------------------------------------------------------


def waiting_for_the_lock() -> int:
    admin = psycopg_admin()
    try:
        return admin.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()[0]
    finally:
        admin.close()


def test_write_transactions_run_one_at_a_time(tmp_path, url):
    app = start(tmp_path, url)
    first, second = db.open_connection(app), db.open_connection(app)
    order = []

    def writer():
        with db.transaction(second):
            order.append("second")

    with db.transaction(first):
        thread = threading.Thread(target=writer)
        thread.start()
        deadline = time.monotonic() + 10
        while waiting_for_the_lock() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        order.append("first")
    thread.join(10)

    assert order == ["first", "second"]
    first.close()
    second.close()


def test_a_snapshot_sees_one_moment(pg, tmp_path, url):
    accounts.create_channel(pg, "dev", accounts.create_user(pg, "alice", "alice-password"))
    other = db.open_connection(start(tmp_path, url, "other"))
    read = "SELECT revision FROM channels WHERE name = 'dev'"

    with db.snapshot(pg):
        before = pg.execute(read).fetchone()[0]
        with db.transaction(other):
            other.execute("UPDATE channels SET revision = revision + 1")
        during = pg.execute(read).fetchone()[0]

    assert before == during != pg.execute(read).fetchone()[0]
    other.close()


def test_a_connection_the_server_dropped_is_replaced(pg):
    def drop():
        pid = pg.execute("SELECT pg_backend_pid()").fetchone()[0]
        admin = psycopg_admin()
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        admin.close()

    drop()
    assert pg.execute("SELECT 1").fetchone()[0] == 1  # outside a transaction: sent again
    drop()
    assert pg.execute("SELECT ?", (2,)).fetchone()[0] == 2  # with values too

    with pytest.raises(db.OperationalError), db.transaction(pg):
        drop()
        pg.execute("SELECT 1")
    assert accounts.user_count(pg) == 0  # and the next one works


def psycopg_admin():
    return psycopg.connect(conftest.STACK.postgres.url("postgres"), autocommit=True)


# --- copies to and from SQLite ----------------------------------------------------------


def fill(connection) -> None:
    alice = accounts.create_user(connection, "alice", "alice-password")
    channel = accounts.create_channel(connection, "dev", alice, description="100% ours")
    accounts.create_token(connection, alice, channel, "read", label="ci")
    with db.transaction(connection):
        connection.execute("INSERT INTO auth_failures VALUES ('192.0.2.1', 1764547200.123456, 3)")


def contents(connection) -> dict:
    return {table: [tuple(row) for row in connection.execute(f"SELECT * FROM {table}"
                                                             " ORDER BY 1, 2")]
            for table in db.tables()}  # fmt: skip


def test_a_database_goes_to_sqlite_and_back_unchanged(pg, tmp_path, url):
    fill(pg)
    copy = tmp_path / "backup.sqlite3"

    db.copy_to_sqlite(pg, copy)
    restored = db.open_connection(start(tmp_path, conftest.STACK.postgres.fresh_database("to"),
                                        "restored"))  # fmt: skip
    db.copy_from_sqlite(restored, copy)

    assert contents(restored) == contents(pg)
    file = sqlite3.connect(copy)
    assert file.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    file.close()
    # New rows take new ids after the copied ones.
    assert accounts.create_user(restored, "bob", "bob-password") == 2
    restored.close()


def test_a_sqlite_database_moves_to_postgresql(lite, pg, tmp_path):
    fill(lite)
    lite.close()

    db.copy_from_sqlite(pg, tmp_path / "lite.sqlite3")

    file = db.connect(str(tmp_path / "lite.sqlite3"))
    assert contents(pg) == contents(file)
    file.close()


def test_a_copy_goes_only_into_an_empty_database_and_a_new_file(pg, lite, tmp_path):
    fill(pg)
    db.copy_to_sqlite(pg, tmp_path / "copy.sqlite3")

    with pytest.raises(ValueError, match="not empty"):
        db.copy_from_sqlite(pg, tmp_path / "copy.sqlite3")
    with pytest.raises(FileExistsError):
        db.copy_to_sqlite(pg, tmp_path / "copy.sqlite3")


# --- the access generation, read once for the requests that come while it is read ------------


def generation_reads(connections) -> list[str]:
    """The reads of the access generation `connections` make from now on, as they begin."""
    reads: list[str] = []
    for connection in connections:
        connection.set_trace_callback(lambda sql: "access_generation" in sql and reads.append(sql))
    return reads


@contextmanager
def locked(url: str):
    """The access generation's table locked against reads until the holder rolls back, as it
    also does on the way out, so that no read is left waiting."""
    with psycopg.connect(url) as holder:
        holder.execute("LOCK TABLE access_generation IN ACCESS EXCLUSIVE MODE")
        try:
            yield holder
        finally:
            holder.rollback()


def until(check, what: str) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_requests_that_come_while_the_generation_is_read_share_the_next_read(tmp_path, url):
    app = start(tmp_path, url)
    connections = [db.open_connection(app) for _ in range(5)]
    reads = generation_reads(connections)
    cache = access.AccessCache()
    with ThreadPoolExecutor(5) as pool, locked(url) as holder:
        first = pool.submit(cache.generation, connections[0])
        until(lambda: len(reads) == 1, "the first read began (and waits for the lock)")
        later = [pool.submit(cache.generation, connection) for connection in connections[1:]]
        time.sleep(0.3)
        waited = len(reads)
        holder.rollback()
        answers = [first.result(10)] + [future.result(10) for future in later]
    assert waited == 1  # the later ones waited for the first to end...
    assert len(reads) == 2  # ...and then share one read, begun after they came
    assert len(set(answers)) == 1
    for connection in connections:
        connection.close()


def test_a_request_never_takes_the_answer_of_a_read_that_began_before_it(tmp_path, url):
    app = start(tmp_path, url)
    early, late = db.open_connection(app), db.open_connection(app)
    reads = generation_reads([early, late])
    cache = access.AccessCache()
    # The early read's snapshot is taken now, before the change below.
    early.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    early.execute("SELECT 1")
    before = access.generation(late)
    with psycopg.connect(url, autocommit=True) as other:
        other.execute("UPDATE access_generation SET generation = generation + 1")
    with ThreadPoolExecutor(2) as pool, locked(url) as holder:
        old = pool.submit(cache.generation, early)
        until(lambda: len(reads) == 2, "the early read began (and waits for the lock)")
        new = pool.submit(cache.generation, late)
        holder.rollback()
        assert old.result(10) == before
        assert new.result(10) == before + 1  # a read of its own, after the early one
    early.rollback()
    early.close()
    late.close()
