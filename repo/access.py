"""The answers of the fast path's token check, kept per process and keyed on the database's
access generation: one number that triggers in both schemas move with every change to what
the check reads (a token's state, its user, a channel and its revision, a membership, a
channel becoming a mirror). While it stands, a request asks for that one row instead of the
check's join of five tables, which on PostgreSQL cost more than the rest of a cached page.

A change made through any server or worker commits its new generation with it, so the next
request anywhere reads the new number and asks again: a revocation, a yank or an upload is in
force at once, as without the cache. An answer is kept with the generation read before its
query ran, so one fetched while the number moved is never taken for the new one's.
"""

from __future__ import annotations

from .db import Connection

# Answers kept at most (tokens times the channels each asks for); past it they start anew.
LIMIT = 10_000


def generation(db: Connection) -> int:
    """The database's access generation now."""
    return db.execute("SELECT generation FROM access_generation WHERE id = ?", (1,)).fetchone()[0]


class AccessCache:
    """(token digest, channel name) -> the token's fields and the channel's, per generation."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, str], tuple[int, dict, dict]] = {}

    def get(self, now: int, digest: str, name: str) -> tuple[dict, dict] | None:
        """The answer kept for this token and channel, if it was fetched at generation `now`."""
        kept = self._answers.get((digest, name))
        if kept is None or kept[0] != now:
            return None
        return kept[1], kept[2]

    def put(self, fetched_at: int, digest: str, name: str, token: dict, channel: dict) -> None:
        """Keep an answer fetched after reading generation `fetched_at`."""
        if len(self._answers) >= LIMIT:
            self._answers = {}
        self._answers[digest, name] = (fetched_at, token, channel)
