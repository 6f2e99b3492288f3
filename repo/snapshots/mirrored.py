"""What a mirror channel's upstream adds to a dated snapshot.

Python side: the project page as the mirror would answer it now (fetched on demand, so a
project never cached before is complete too), listing only files whose upstream upload-time
(PEP 700) is known and not after the instant. R side: the rows the upstream's indexes listed at
the instant, as the mirror saw them (mirror_listings); a file never fetched is fetched on
demand, from Archive/ once upstream moved it there. In both, a name the channel held files of
at the instant is private then, as it is now (mirror.md R23), unless an owner merged it in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime

from flask import Flask

from ..cran import index
from ..cran.paths import SOURCE_DIR
from ..db import Connection, Row, connection_for
from ..mirror import pypi as mirror_pypi
from ..mirror import pypi_pages as pages
from ..mirror import settings
from ..mirror.cran import Contrib
from . import instant

# Whether an upstream file was listed at the instant bound to both parameters.
_LISTED_AT = (
    "EXISTS (SELECT 1 FROM mirror_listings WHERE file_id = mirror_files.id AND since <= ?"
    " AND (until IS NULL OR until > ?))"
)


def pypi_state(app: Flask, channel: Row, name: str, at: datetime,
               uploads: list[Row]) -> pages.Snapshot:  # fmt: skip
    """How `name`'s page at `at` takes the upstream's files in; `uploads` are the channel's
    own files of that name at `at`."""
    state = pages.page_state(app, channel, name) or mirror_pypi.revalidate(app, channel, name)
    if state.mirror_id is None:
        return state
    if uploads and not _merged(connection_for(app), channel["id"], "pypi", name):
        return pages.LOCAL
    return replace(state, until=at.timestamp())


def _merged(db: Connection, channel_id: int, kind: str, name: str) -> bool:
    return settings.normalized(kind, name) in settings.rules(db, channel_id, kind)["merge"]


@dataclass(frozen=True)
class ContribAt(Contrib):
    """The upstream's side of a channel's contrib directories at an instant, as
    repo.cran.cache.Mirrored; `private` names the channel held files of then."""

    at: datetime | None = None
    private: frozenset[str] = frozenset()

    def entries(self, db: Connection, subdir: str) -> list[index.Entry]:
        moment = instant.stored(self.at)
        entries = []
        for row in self._shown_rows(db, "project, fields", subdir, _LISTED_AT, (moment, moment)):
            if self._held_then(db, row["project"]):
                continue
            fields = json.loads(row["fields"])
            entries.append(index.Entry(fields, fields.get("File")))
        return entries

    def archived(self, db: Connection) -> dict[str, list[tuple[str, int, float]]]:
        """The upstream versions archived by the instant: known to be uploaded by then (an
        archive.rds row's time, or when the mirror saw upstream stop listing it) and not
        listed then."""
        moment = instant.stored(self.at)
        rows = self._shown_rows(
            db, "project, version, filename, size, upload_time", SOURCE_DIR,
            f"NOT {_LISTED_AT} AND {settings.UPLOADED_BY}", (moment, moment, self.at.timestamp()),
        )  # fmt: skip
        return self.archive_of([row for row in rows if not self._held_then(db, row["project"])])

    def _held_then(self, db: Connection, project: str) -> bool:
        """Whether the channel's own files of `project` at the instant keep upstream's out."""
        return project in self.private and not _merged(db, self.mirror.channel_id, "cran",
                                                       project)  # fmt: skip
