"""The answers of the fast path's token check, kept per process and keyed on the database's
access generation: one number that triggers in both schemas move with every change to what
the check reads (a token's state, its user, a channel and its revision, a membership, a
channel becoming a mirror). While it stands, a request asks for that one row instead of the
check's join of five tables, which on PostgreSQL cost more than the rest of a cached page.

A change made through any server or worker commits its new generation with it, so the next
request anywhere reads the new number and asks again: a revocation, a yank or an upload is in
force at once, as without the cache. An answer is kept with the generation read before its
query ran, so one fetched while the number moved is never taken for the new one's.

On PostgreSQL even that one row is a round trip, which on a busy server costs more CPU (the
client's, the backend's, the kernel's) than the rest of a cached page. The requests of a
process that arrive while one read of it is under way share the next read (a group commit,
for reads): each still sees a read begun after it arrived, so whatever was committed before
it came is in force for it, and a burst of requests asks once or twice instead of once each.
"""

from __future__ import annotations

import threading

from .db import Connection, dialect

# Answers kept at most (tokens times the channels each asks for); past it they start anew.
LIMIT = 10_000


def generation(db: Connection) -> int:
    """The database's access generation now."""
    return db.execute("SELECT generation FROM access_generation WHERE id = ?", (1,)).fetchone()[0]


class AccessCache:
    """(token digest, channel name) -> the token's fields and the channel's, per generation."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, str], tuple[int, dict, dict]] = {}
        self._turn = threading.Condition()
        self._reads = 0  # reads of the generation completed, numbered from 1
        self._reading = False  # one is under way
        self._last = 0  # what the last completed one read

    def generation(self, db: Connection) -> int:
        """The access generation as read by a query begun after this call: on PostgreSQL,
        shared with the calls of other threads that also came before it began (the module's
        docstring says why); on SQLite, which answers in microseconds, a query of its own."""
        if dialect(db) == "sqlite":
            return generation(db)
        with self._turn:
            # The read under way began before this call: only the one after it will do.
            wanted = self._reads + (2 if self._reading else 1)
            while self._reads < wanted:
                if not self._reading:
                    self._reading = True
                    break
                self._turn.wait()
            else:
                return self._last
        try:
            current = generation(db)
        except BaseException:
            with self._turn:  # a waiter reads for itself
                self._reading = False
                self._turn.notify_all()
            raise
        with self._turn:
            self._reads, self._reading, self._last = self._reads + 1, False, current
            self._turn.notify_all()
        return current

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
