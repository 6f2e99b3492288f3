"""A channel's history over the API: each upload, yank, unyank and delete of its files, when
and by whom (issue 14), as `repo channel history` prints it."""

from __future__ import annotations

from ..db import get_db
from ..snapshots import history
from . import shapes
from .channels import CHANNEL
from .routing import bounds, endpoint


@endpoint("GET", f"{CHANNEL}/history", "A channel's uploads, yanks, unyanks and deletes, oldest"
          " first, paged back from the newest: ?limit=N the newest N, ?offset=K skips the"
          " newest K", need="anyone", channel="read", query=("offset", "limit"),
          answers={200: "EventList"})  # fmt: skip
def events(channel):
    # Paged newest first, so that ?limit= alone answers the latest events, as a log's tail;
    # each page reads oldest first, as the history is told. Only the page is read.
    offset, limit = bounds()
    db = get_db()
    rows = history.of_channel(db, channel["id"], limit, offset)
    return {"total_count": history.count(db, channel["id"]),
            "items": [shapes.event(row) for row in rows]}  # fmt: skip
