"""Single flight across threads, gunicorn worker processes and servers: a lease row per key
in the database.

Whoever takes the lease on a key (a file, a page) fetches it from upstream; everybody else
waits for the lease to go, or, on the holder's own host, follows the file it is writing
(`path`). A holder that dies (a killed worker) stops renewing, and its lease is taken over
once it has expired.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable

from ..db import Connection, Row, transaction

TERM = 60.0  # seconds a lease lasts unless renewed; a holder renews while bytes arrive


def holder() -> str:
    """This thread of this process on this host, as a lease's holder: host:pid:thread."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def on_this_host(lease: Row) -> bool:
    """Whether a lease's holder runs on this host: only then is its `path` a file here."""
    return lease["holder"].rsplit(":", 2)[0] == socket.gethostname()


def take(db: Connection, key: str, path: str | None = None,
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


def renew(db: Connection, key: str, clock: Callable[[], float] = time.time) -> None:
    """Keep the lease while the work goes on."""
    with transaction(db):
        db.execute(
            "UPDATE mirror_leases SET expires = ? WHERE key = ? AND holder = ?",
            (clock() + TERM, key, holder()),
        )


def release(db: Connection, key: str) -> None:
    """Give the lease up, done or failed: the next one to want the key takes it."""
    with transaction(db):
        db.execute("DELETE FROM mirror_leases WHERE key = ? AND holder = ?", (key, holder()))


def held(db: Connection, key: str,
         clock: Callable[[], float] = time.time) -> Row | None:  # fmt: skip
    """The live lease on `key` (holder, expires, path), if anybody holds one."""
    return db.execute(
        "SELECT * FROM mirror_leases WHERE key = ? AND expires >= ?", (key, clock())
    ).fetchone()


def wait(db: Connection, key: str, deadline: float, poll: float = 0.05,
         clock: Callable[[], float] = time.time) -> bool:  # fmt: skip
    """Wait until nobody holds `key`, at most until `deadline` (clock time); True if free."""
    while held(db, key, clock) is not None:
        if clock() >= deadline:
            return False
        time.sleep(poll)
    return True
