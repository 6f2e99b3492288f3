"""An active mirror's scheduled sync (mirror.md R0): the passive cache plus its allow-list
prefetched every period, so that what CI installs is held before anybody asks for it, and
through any upstream outage after.

Each gunicorn worker runs one Scheduler thread (started after the fork); a lease per mirror
lets exactly one of them run a due sync while the others skip it. A sync goes the way
`repo mirror prefetch` goes (repo.mirror.prefetch): one name at a time, the page or index made
fresh, each file streamed, verified and stored. One that had problems is tried again after
RETRY, not a whole period later.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask
from packaging.requirements import Requirement

from ..db import Connection, connection_for, now, transaction
from ..errors import RepoError
from . import lease, prefetch, settings
from .upstream import clock_of

TICK = 1.0  # seconds between looks for a due sync: one indexed query
RETRY = 300.0  # seconds until a sync that had problems is tried again (at most its period)
UNEXPECTED = "failed: an unexpected error (the server log has it)"


@dataclass(frozen=True)
class Result:
    """What one sync did, as `repo mirror list` and the channel page show it."""

    text: str
    failed: bool


def due(db: Connection, moment: float) -> list[int]:
    """The ids of the active mirrors whose sync is due at `moment` (epoch seconds)."""
    rows = db.execute(
        "SELECT id FROM mirrors WHERE mode = 'active' AND next_sync <= ? ORDER BY next_sync",
        (moment,),
    )
    return [row["id"] for row in rows]


def run(app: Flask, mirror_id: int, say: Callable[[str], None]) -> Result | None:
    """Sync one mirror now, unless another worker is at it (then None); the outcome is
    recorded with the time of the next sync."""
    db = connection_for(app)
    key = f"sync:{mirror_id}"
    if not lease.take(db, key):
        return None
    try:
        mirror = settings.by_id(db, mirror_id)
        if mirror is None:  # removed since it was found due
            return None
        try:
            result = _prefetch(app, db, mirror, key, say)
        except Exception:
            # Recorded, so that the schedule waits RETRY rather than trying again each TICK.
            _record(app, db, mirror, Result(UNEXPECTED, failed=True))
            raise
        _record(app, db, mirror, result)
        return result
    finally:
        lease.release(db, key)


def _record(app: Flask, db: Connection, mirror: settings.Mirror, result: Result) -> None:
    """A sync's outcome, and when the next one is due: a period on, or RETRY after problems."""
    period = float(mirror.sync_every or settings.DEFAULT_SYNC_EVERY.total_seconds())
    wait = min(period, RETRY) if result.failed else period
    with transaction(db):
        db.execute(
            "UPDATE mirrors SET last_sync = ?, sync_result = ?, next_sync = ? WHERE id = ?",
            (now(), result.text, clock_of(app)() + wait, mirror.id),
        )


def _prefetch(app: Flask, db: Connection, mirror: settings.Mirror, key: str,
              say: Callable[[str], None]) -> Result:  # fmt: skip
    def said(text: str) -> None:
        lease.renew(db, key)  # a long sync keeps its lease while it makes progress
        say(text)

    channel = db.execute("SELECT * FROM channels WHERE id = ?", (mirror.channel_id,)).fetchone()
    try:
        if mirror.kind == "pypi":
            wanted = [Requirement(entry) for entry in mirror.sync_list]
            outcome = prefetch.python(app, channel, wanted, said)
        else:
            outcome = prefetch.cran(app, channel, list(mirror.sync_list), said)
    except RepoError as error:
        return Result(error.message, failed=True)
    text = f"{outcome.cached} files cached, {outcome.problems} problems"
    return Result(text, failed=outcome.problems > 0)


class Scheduler:
    """The thread of one worker that runs the syncs that come due."""

    def __init__(self, app: Flask):
        self.app = app
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="repo-mirror-sync", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)

    def _loop(self) -> None:
        while not self.stopped.wait(TICK):
            try:
                with self.app.app_context():
                    self._run_due()
            except Exception:  # noqa: BLE001 - a failed sync must not end the schedule
                self.app.logger.exception("mirror sync failed")

    def _run_due(self) -> None:
        db = connection_for(self.app)
        for mirror_id in due(db, clock_of(self.app)()):
            result = run(self.app, mirror_id, lambda _line: None)
            if result is not None:
                self.app.logger.info("mirror sync %d: %s", mirror_id, result.text)
