"""PostgreSQL through psycopg 3, behind the face of repo.db: connections that answer sqlite3's
calls with the same SQL (`?` placeholders, rows by index or column name, 0/1 flags), write
transactions serialised by one advisory lock as SQLite's BEGIN IMMEDIATE serialises them, and
the schema created or migrated under that lock, so that several servers may start at once.
A statement with values, which is nearly every one a request makes, is prepared once per
connection and run by libpq's own calls (Raw.run_prepared); scripts and streams go through
psycopg's cursors.

Each process has a pool, opened on first use, so after gunicorn's fork; each thread keeps one
connection from it, as with SQLite. A connection the server dropped (a restart) is replaced:
a statement outside a transaction is sent again on the new one, and a transaction fails once,
as a transaction would on a restart anyway.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq
from psycopg.adapt import Dumper, PyFormat, Transformer
from psycopg_pool import ConnectionPool

from . import migrations
from .db import PostgresError, PostgresIntegrityError, PostgresOperationalError

# The one lock every write transaction takes first (devpi-postgresql does the same): writes
# run one at a time, across every server, exactly as SQLite's BEGIN IMMEDIATE has them.
# Transaction-scoped, so a pooler in transaction mode could not leak it. Reads never take it.
WRITE_LOCK = 0x7265706F  # "repo"
_LOCK = f"SELECT pg_advisory_xact_lock({WRITE_LOCK})"
# As SQLite's synchronous=NORMAL: a commit nobody was told about may be lost in a crash of the
# server (never half of one); a durable one is flushed before COMMIT returns.
_BEGIN = f"BEGIN; SET LOCAL synchronous_commit = off; {_LOCK}"
_BEGIN_DURABLE = f"BEGIN; {_LOCK}"
_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
_IDLE = pq.TransactionStatus.IDLE
_OPEN = (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR, pq.TransactionStatus.ACTIVE)
# Connections a process keeps beyond its request threads: the mirror schedule, page checks.
SPARE_CONNECTIONS = 4
CONNECT_TIMEOUT = 10  # seconds, for a new connection and for one from a full pool

# Statements one connection prepares for run_prepared; beyond them (SQL made with a varying
# number of placeholders) a statement is parsed each time. psycopg's own default is 100.
PREPARED_STATEMENTS = 256

# A string literal, a quoted name, or a character to translate outside them.
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?\d*|%")


@functools.lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """SQLite's `?` placeholders as psycopg's `%s`, once per SQL text. A literal `%` is
    doubled, inside string literals too: psycopg reads placeholders everywhere."""
    return _placeholders(sql, lambda: "%s", lambda token: token.replace("%", "%%"))


@functools.lru_cache(maxsize=4096)
def numbered(sql: str) -> bytes:
    """SQLite's `?` placeholders as PostgreSQL's own `$1, $2, ...`, for libpq."""
    count = itertools.count(1)
    return _placeholders(sql, lambda: f"${next(count)}", lambda token: token).encode()


def _placeholders(sql: str, placeholder: Callable[[], str], other: Callable[[str], str]) -> str:
    def replace(match: re.Match) -> str:
        token = match[0]
        if token == "?":
            return placeholder()
        if token.startswith("?"):
            raise ValueError(f"numbered placeholders are SQLite's only: {sql}")
        return other(token)

    return _TOKENS.sub(replace, sql)


class _Flag(Dumper):
    """Python bools as 0 or 1, as sqlite3 binds them: flags are INTEGER columns on both."""

    oid = psycopg.adapters.types["int4"].oid

    def dump(self, obj: bool) -> bytes:
        return b"1" if obj else b"0"


class _Shape:
    """The columns of one result, shared by its rows."""

    __slots__ = ("names", "index")

    def __init__(self, names: Sequence[str]):
        self.names = list(names)
        self.index: dict[str, int] = {}
        for number, name in enumerate(names):
            self.index.setdefault(name, number)


class Row:
    """A row as sqlite3.Row gives it: row[0], row["name"], keys(), dict(row), tuple(row)."""

    __slots__ = ("_values", "_shape")

    def __init__(self, values: Sequence[Any], shape: _Shape):
        self._values = values
        self._shape = shape

    def __getitem__(self, key: int | str | slice) -> Any:
        if isinstance(key, str):
            return self._values[self._shape.index[key]]
        return self._values[key]

    def keys(self) -> list[str]:
        return list(self._shape.names)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Row):
            return NotImplemented
        return self._shape.names == other._shape.names and tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash((tuple(self._shape.names), tuple(self)))

    def __repr__(self) -> str:
        return f"<Row {dict(zip(self._shape.names, self._values, strict=True))!r}>"


@functools.lru_cache(maxsize=4096)
def _shape(names: tuple[str, ...]) -> _Shape:
    return _Shape(names)


def _row_maker(result: pq.abc.PGresult | None) -> Any:
    """A Row maker for one result. The column names come from the result itself:
    cursor.description would build an object per column."""
    if result is None or not result.nfields:
        return tuple
    names = tuple(result.fname(number).decode() for number in range(result.nfields))
    return functools.partial(Row, shape=_shape(names))


def _rows(cursor: psycopg.Cursor) -> Any:
    """psycopg's row factory: a Row maker for the cursor's current result."""
    return _row_maker(cursor.pgresult)


class Result:
    """What run_prepared answers, as a sqlite3 cursor would: the rows, all loaded (libpq's
    result holds them all anyway), and how many the statement returned or changed."""

    __slots__ = ("_rows", "_next", "rowcount")

    def __init__(self, rows: list[Row], rowcount: int):
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount

    def fetchone(self) -> Row | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[Row]:
        rest = self._rows[self._next :]
        self._next = len(self._rows)
        return rest

    def __iter__(self) -> Iterator[Row]:
        return iter(self.fetchall())


_NAMES = (f"repo_{number}".encode() for number in itertools.count(1))
_AUTO = (PyFormat.AUTO,)
_DONE = (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK)


class Raw(psycopg.Connection):
    """psycopg's connection, and what run_prepared keeps with it: the statements it prepared
    on this session, and one Transformer (psycopg's own adaptation of values and results)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.statements: dict[tuple[str, tuple[int, ...]], tuple[bytes, Callable]] = {}
        self.transformer = Transformer.from_context(self)

    def run_prepared(self, sql: str, parameters: Sequence[Any]) -> Result:
        """A statement with parameters, by libpq's blocking calls: psycopg's cursor would do
        the same round trip with several times the CPU (a page's one query costs more there
        than the rest of the request). Values go through psycopg's adapters, so both ways
        send and read the same; each statement is prepared on first use, and the shape of
        its rows kept with it."""
        transformer = self.transformer
        values = transformer.dump_sequence(parameters, _AUTO * len(parameters))
        types = transformer.types
        pgconn = self.pgconn
        prepared = self.statements.get((sql, types))
        if prepared is None and len(self.statements) < PREPARED_STATEMENTS:
            name = next(_NAMES)
            self._checked(pgconn.prepare(name, numbered(sql), types))
            described = pgconn.describe_prepared(name)
            self._checked(described)
            prepared = self.statements[sql, types] = (name, _row_maker(described))
        if prepared is None:
            result = pgconn.exec_params(numbered(sql), values, types, transformer.formats)
            make_row = _row_maker(result)
        else:
            result = pgconn.exec_prepared(prepared[0], values, transformer.formats)
            make_row = prepared[1]
        self._checked(result)
        if result.status != pq.ExecStatus.TUPLES_OK:
            return Result([], -1 if result.command_tuples is None else result.command_tuples)
        transformer.set_pgresult(result)
        try:
            rows = transformer.load_rows(0, result.ntuples, make_row)
        finally:
            transformer.set_pgresult(None)
        return Result(rows, len(rows))

    def _checked(self, result: pq.abc.PGresult) -> None:
        if result.status in _DONE:
            return
        if self.pgconn.status == pq.ConnStatus.BAD:  # the server went away
            raise psycopg.OperationalError(self.pgconn.get_error_message(self.info.encoding))
        raise psycopg.errors.error_from_result(result, encoding=self.info.encoding)


def _configure(connection: psycopg.Connection) -> None:
    connection.adapters.register_dumper(bool, _Flag)
    # psycopg prepares of its own what it runs often, and on a ROLLBACK deallocates every
    # prepared statement of the session, run_prepared's too: it prepares nothing here.
    connection.prepare_threshold = None


_OPTIONS = {"autocommit": True, "row_factory": _rows, "connect_timeout": CONNECT_TIMEOUT,
            "application_name": "repo"}  # fmt: skip


def _translated(error: psycopg.Error) -> PostgresError:
    """psycopg's error as repo.db's: callers catch one name on both engines."""
    if isinstance(error, psycopg.IntegrityError):
        return PostgresIntegrityError(str(error), error.sqlstate)
    if isinstance(error, psycopg.OperationalError):
        return PostgresOperationalError(str(error), getattr(error, "sqlstate", None))
    return PostgresError(str(error), error.sqlstate)


class _Single:
    """A pool of one connection, for start-up before the process's pool exists."""

    def __init__(self, url: str):
        self.url = url

    def getconn(self) -> psycopg.Connection:
        connection = Raw.connect(self.url, **_OPTIONS)
        _configure(connection)
        return connection

    def putconn(self, connection: psycopg.Connection) -> None:
        connection.close()


# Connections inherited through a fork: never closed or finalised in the child, since their
# sockets are the parent's (closing one would end the parent's session).
_INHERITED: list[Any] = []


class Connection:
    """One connection with sqlite3's face, taken from a pool on first use and given back on
    close (or when its thread ends and drops it)."""

    def __init__(self, pool: _FromPool | _Single):
        self._pool = pool
        self._raw: psycopg.Connection | None = None
        self._pid = os.getpid()
        self._trace: Callable[[str], object] | None = None

    def _connection(self) -> psycopg.Connection:
        raw = self._raw
        if raw is None or raw.closed or self._pid != os.getpid():
            self._give_back()
            raw = self._raw = self._pool.getconn()
            self._pid = os.getpid()
        return raw

    def _give_back(self) -> None:
        raw, self._raw = self._raw, None
        if raw is None:
            return
        if self._pid == os.getpid():
            self._pool.putconn(raw)
        else:
            _INHERITED.append(raw)

    @property
    def in_transaction(self) -> bool:
        return self._raw is not None and self._raw.pgconn.transaction_status in _OPEN

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> psycopg.Cursor | Result:
        """Run one statement (or, without parameters, a script of several)."""
        try:
            raw = self._connection()
            idle = raw.pgconn.transaction_status == _IDLE
            try:
                return self._run(raw, sql, parameters)
            except psycopg.OperationalError:
                if not (idle and raw.broken):
                    raise
            # Dropped between statements (a restart of the server): outside a transaction
            # nothing was done yet, so once more on a new connection.
            return self._run(self._connection(), sql, parameters)
        except psycopg.Error as error:
            raise _translated(error) from error

    def _run(self, raw: Raw, sql: str, parameters: Sequence[Any]) -> psycopg.Cursor | Result:
        if self._trace is not None:
            self._trace(sql)
        if not parameters:  # a script, or a statement without values: psycopg sends it as is
            return raw.execute(sql)
        return raw.run_prepared(sql, parameters)

    def set_trace_callback(self, trace: Callable[[str], object] | None) -> None:
        """sqlite3's: `trace` gets the SQL of each statement run from now on (None: stop)."""
        self._trace = trace

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> psycopg.Cursor:
        if self._trace is not None:
            self._trace(sql)
        try:
            cursor = self._connection().cursor()
            cursor.executemany(translate(sql), parameters)
            return cursor
        except psycopg.Error as error:
            raise _translated(error) from error

    def stream(self, sql: str) -> Iterator[Row]:
        """The rows of a query a batch at a time (a server-side cursor), inside a snapshot."""
        try:
            with self._connection().cursor(name="repo_stream") as cursor:
                cursor.execute(sql)
                yield from cursor
        except psycopg.Error as error:
            raise _translated(error) from error

    def rollback(self) -> None:
        if self.in_transaction and not self._raw.broken:
            try:
                self._raw.execute("ROLLBACK")
            except psycopg.Error as error:
                raise _translated(error) from error

    def close(self) -> None:
        self.rollback()
        self._give_back()

    def __del__(self) -> None:
        # A thread that ends drops its connection: it goes back to the pool.
        try:
            self._give_back()
        except Exception:  # noqa: BLE001 - at exit the pool may be gone already
            pass

    @contextmanager
    def transaction(self, durable: bool = False) -> Iterator[Connection]:
        """repo.db.transaction on PostgreSQL: BEGIN, then the write lock."""
        self.execute(_BEGIN_DURABLE if durable else _BEGIN)
        try:
            yield self
            # A statement that failed inside (and was caught) aborted the transaction, and its
            # COMMIT rolls back: say so, as SQLite would have kept the rest.
            if self.execute("COMMIT").statusmessage == "ROLLBACK":
                raise PostgresError("The transaction failed and was rolled back")
        except BaseException:
            self.rollback()
            raise

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """repo.db.snapshot on PostgreSQL: REPEATABLE READ, so one snapshot for all of it."""
        self.execute(_SNAPSHOT)
        try:
            yield self
        finally:
            if self.in_transaction:
                self.execute("COMMIT")

    def reset_identities(self) -> None:
        """After rows came with their ids (a restore): new ids go on from the largest."""
        tables = self.execute(
            "SELECT table_name FROM information_schema.columns WHERE column_name = 'id'"
            " AND is_identity = 'YES' AND table_schema = current_schema()"
        ).fetchall()
        for (table,) in tables:
            self.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                         f" coalesce(max(id), 0) + 1, false) FROM {table}")  # fmt: skip


class Database:
    """An app's PostgreSQL: the pool of this process and the start-up work."""

    def __init__(self, url: str, threads: int):
        if not url.startswith(("postgresql://", "postgres://")):
            raise ValueError("REPO_DATABASE_URL: use a postgresql://USER:PASS@HOST:PORT/DB URL")
        self.url = url
        self.size = threads + SPARE_CONNECTIONS
        self._pool: ConnectionPool | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def pool(self) -> ConnectionPool:
        """This process's pool, opened on first use (in a gunicorn worker: after the fork)."""
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                if self._pool is not None:
                    _INHERITED.append(self._pool)
                self._pool = ConnectionPool(
                    self.url, connection_class=Raw, kwargs=_OPTIONS, configure=_configure,
                    check=ConnectionPool.check_connection, min_size=0, max_size=self.size,
                    timeout=CONNECT_TIMEOUT, num_workers=1, name="repo", open=True,
                )  # fmt: skip
                self._pid = os.getpid()
            return self._pool

    def connection(self) -> Connection:
        """A connection from this process's pool (taken on its first statement)."""
        return Connection(_FromPool(self))

    def close(self) -> None:
        """Close this process's pool, if it has one."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            if self._pid == os.getpid():
                pool.close()
            else:
                _INHERITED.append(pool)

    def init(self, schema: str) -> str:
        """Create the schema in an empty database, or migrate it, under the write lock (of
        several servers starting at once, one does it and the others then find it done); and
        return the key every server signs sessions with, made by whichever came first."""
        connection = Connection(_Single(self.url))
        try:
            while _migrated(connection, schema):
                pass
            with connection.transaction(durable=True):
                connection.execute(
                    "INSERT INTO server_secrets (name, value) VALUES ('secret_key', ?)"
                    " ON CONFLICT (name) DO NOTHING",
                    (secrets.token_hex(32),),
                )
                return connection.execute(
                    "SELECT value FROM server_secrets WHERE name = 'secret_key'"
                ).fetchone()[0]
        finally:
            connection.close()


def _migrated(connection: Connection, schema: str) -> bool:
    """One step: the schema made, or one migration run; False once current."""
    with connection.transaction(durable=True):
        version = _version(connection)
        if version is None:
            connection.execute(schema)
            return True
        steps = migrations.POSTGRES[version - migrations.POSTGRES_FIRST :]
        if not steps:
            return False
        steps[0](connection)
        connection.execute("UPDATE schema_version SET version = ?", (version + 1,))
        return True


class _FromPool:
    """The process's pool as of each getconn: a thread's connection outlives a fork."""

    def __init__(self, database: Database):
        self.database = database
        self._pool: ConnectionPool | None = None

    def getconn(self) -> psycopg.Connection:
        self._pool = self.database.pool()
        return self._pool.getconn()

    def putconn(self, connection: psycopg.Connection) -> None:
        assert self._pool is not None
        self._pool.putconn(connection)


def _version(connection: Connection) -> int | None:
    """The schema's version; None in an empty database."""
    if connection.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
        return None
    return connection.execute("SELECT version FROM schema_version").fetchone()[0]
