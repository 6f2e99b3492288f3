"""Signed-in web UI sessions, kept in the database: the cookie carries a random id and the
table only its sha256, so signing out ends a session everywhere, a copied cookie included, and
a session's end is fixed when it begins however often it is used.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from .db import Connection, Row, transaction


def _text(moment: datetime) -> str:
    # As db.now() writes times, so that comparing the text compares the times.
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _digest(session_id: str) -> str:
    # Looked up by its sha256, like a token: no timing channel on the id itself.
    return hashlib.sha256(session_id.encode()).hexdigest()


def start(db: Connection, user_id: int, lifetime: timedelta, at: datetime | None = None) -> str:
    """Begin a session for the user that ends `lifetime` after `at` (now) and return its id,
    which is not kept; sessions that have already ended are deleted on the way."""
    at = at or datetime.now(UTC)
    session_id = secrets.token_urlsafe(32)
    with transaction(db):
        db.execute("DELETE FROM sessions WHERE expires <= ?", (_text(at),))
        db.execute(
            "INSERT INTO sessions (hash, user_id, created, expires) VALUES (?, ?, ?, ?)",
            (_digest(session_id), user_id, _text(at), _text(at + lifetime)),
        )
    return session_id


def find_user(db: Connection, session_id: str, at: datetime | None = None) -> Row | None:
    """The user row of a session that is live at `at` (now), in one query; None when the
    session never was, was ended, has expired, or its user is disabled."""
    at = at or datetime.now(UTC)
    return db.execute(
        "SELECT users.* FROM sessions JOIN users ON users.id = sessions.user_id"
        " WHERE sessions.hash = ? AND sessions.expires > ? AND users.disabled = 0",
        (_digest(session_id), _text(at)),
    ).fetchone()


def end(db: Connection, session_id: str) -> None:
    """End one session (signing out)."""
    with transaction(db):
        db.execute("DELETE FROM sessions WHERE hash = ?", (_digest(session_id),))


def end_all(db: Connection, user_id: int) -> None:
    """End every session of a user, on every browser."""
    with transaction(db):
        db.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
