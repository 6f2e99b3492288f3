"""Single flight across threads and gunicorn worker processes: a lease row per key in SQLite.

Whoever takes the lease on a key (a file, a page) fetches it from upstream; everybody else
waits for the lease to go, or follows the file its holder is writing (`path`). A holder that
dies (a killed worker) stops renewing, and its lease is taken over once it has expired.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable

from ..db import transaction

TERM = 60.0  # seconds a lease lasts unless renewed; a holder renews while bytes arrive


def holder() -> str:
    """This thread of this process, as a lease's holder."""
    return f"{os.getpid()}:{threading.get_ident()}"


def take(db: sqlite3.Connection, key: str, path: str | None = None,
         clock: Callable[[], float] = time.time) -> bool:  # fmt: skip
    """Take the lease on `key` if nobody holds it (or its holder's term ran out)."""
    moment = clock()
    with transaction(db):
        cursor = db.execute(
            "INSERT INTO mirror_leases (key, holder, expires, path) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET holder = excluded.holder,"
            " expires = excluded.expires, path = excluded.path WHERE mirror_leases.expires < ?",
            (key, holder(), moment + TERM, path, moment),
        )
    return cursor.rowcount == 1


def renew(db: sqlite3.Connection, key: str, clock: Callable[[], float] = time.time) -> None:
    """Keep the lease while the work goes on."""
    with transaction(db):
        db.execute(
            "UPDATE mirror_leases SET expires = ? WHERE key = ? AND holder = ?",
            (clock() + TERM, key, holder()),
        )


def release(db: sqlite3.Connection, key: str) -> None:
    """Give the lease up, done or failed: the next one to want the key takes it."""
    with transaction(db):
        db.execute("DELETE FROM mirror_leases WHERE key = ? AND holder = ?", (key, holder()))


def held(db: sqlite3.Connection, key: str,
         clock: Callable[[], float] = time.time) -> sqlite3.Row | None:  # fmt: skip
    """The live lease on `key` (holder, expires, path), if anybody holds one."""
    return db.execute(
        "SELECT * FROM mirror_leases WHERE key = ? AND expires >= ?", (key, clock())
    ).fetchone()


def wait(db: sqlite3.Connection, key: str, deadline: float, poll: float = 0.05,
         clock: Callable[[], float] = time.time) -> bool:  # fmt: skip
    """Wait until nobody holds `key`, at most until `deadline` (clock time); True if free."""
    while held(db, key, clock) is not None:
        if clock() >= deadline:
            return False
        time.sleep(poll)
    return True
