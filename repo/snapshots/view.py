"""A channel's own files as they stood at an instant, from their history: for each file its
latest event at or before the instant, unless that event deleted it. Rows have the columns of
a files row (and `package`, `display_name`), so the pages render them as they render uploads.
"""

from __future__ import annotations

from ..db import Connection, Row

# Each file's last event at or before the instant (ties, made in one transaction, by id).
_STATE = (
    "SELECT * FROM (SELECT file_events.*, row_number() OVER (PARTITION BY kind, subdir, filename"
    " ORDER BY at DESC, id DESC) AS place FROM file_events WHERE channel_id = ? AND at <= ?"
    "{where}) AS latest WHERE place = 1 AND event <> 'delete' ORDER BY uploaded, filename"
)


def files_at(db: Connection, channel_id: int, at: str, **where: str) -> list[Row]:
    """The files the channel held at `at` (a stored time), oldest upload first, with the yank
    state they had then; `where` narrows to a kind, package, subdir or filename."""
    assert set(where) <= {"kind", "package", "subdir", "filename"}
    condition = "".join(f" AND {column} = ?" for column in where)
    return db.execute(_STATE.format(where=condition), (channel_id, at, *where.values())).fetchall()


def projects_at(db: Connection, channel_id: int, kind: str, at: str) -> list[tuple[str, str]]:
    """(display name, name) of each package of `kind` with a file at `at`, by name; the
    display name its newest file then had."""
    names: dict[str, str] = {}
    for row in files_at(db, channel_id, at, kind=kind):
        names[row["package"]] = row["display_name"]
    return [(display, name) for name, display in sorted(names.items())]


def file_by_digest(db: Connection, channel_id: int, at: str, sha256: str,
                   filename: str) -> Row | None:  # fmt: skip
    """The file of this name and content the channel held at `at`, if it did."""
    for row in files_at(db, channel_id, at, filename=filename):
        if row["sha256"] == sha256:
            return row
    return None
