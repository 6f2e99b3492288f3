"""Failed-authentication throttling per client address: after too many failures in a window,
every request from that address that carries a credential gets 429 until the window ends.

Counted in the database, so every gunicorn worker sees the same count (Warehouse's default:
10 failures per 5 minutes).
"""

from __future__ import annotations

import time

from .db import Connection, transaction

WINDOW = 300


def retry_after(db: Connection, address: str, limit: int) -> int | None:
    """Seconds until `address` may try again, or None when it is not throttled."""
    if limit <= 0:
        return None
    row = db.execute(
        "SELECT window_start, count FROM auth_failures WHERE address = ?", (address,)
    ).fetchone()
    if row is None or row["count"] < limit:
        return None
    remaining = int(row["window_start"] + WINDOW - time.time()) + 1
    return remaining if remaining > 0 else None


def record_failure(db: Connection, address: str) -> None:
    """Count one failed authentication; a window that has ended starts afresh.

    Every window that has ended, of any address, is deleted first (a range of the index
    auth_failures_window), so the table holds only the last WINDOW seconds' addresses.
    """
    now = time.time()
    with transaction(db):
        db.execute("DELETE FROM auth_failures WHERE window_start < ?", (now - WINDOW,))
        db.execute(
            "INSERT INTO auth_failures (address, window_start, count) VALUES (?, ?, 1)"
            " ON CONFLICT (address) DO UPDATE SET count = auth_failures.count + 1",
            (address, now),
        )
