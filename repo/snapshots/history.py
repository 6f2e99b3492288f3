"""The history dated snapshots read, written in the transaction that makes each change, so a
snapshot can never see a change that did not happen or miss one that did: each upload, yank,
unyank and delete of a channel's file as a file_events row with the file as it was (by
repo.files), and when a CRAN-like upstream's index listed each file (by
repo.mirror.cran_indexes).
"""

from __future__ import annotations

from ..db import Connection, Row

EVENTS = ("upload", "yank", "unyank", "delete")
# What names the files an event is about, as repo.files names them.
_KEYS = frozenset({"id", "channel_id", "kind", "subdir", "filename"})
# The file's columns an event keeps, beside its package's two names.
_FILE_COLUMNS = ("kind", "subdir", "version", "filename", "sha256", "size", "uploader_id",
                 "uploaded", "yanked", "yanked_reason", "requires_python", "metadata_sha256",
                 "metadata")  # fmt: skip
_RECORD = (
    "INSERT INTO file_events (channel_id, at, event, actor_id, package, display_name, "
    + ", ".join(_FILE_COLUMNS)
    + ") SELECT files.channel_id, ?, ?, ?, packages.name, packages.display_name, "
    + ", ".join(f"files.{column}" for column in _FILE_COLUMNS)
    + " FROM files JOIN packages ON packages.id = files.package_id WHERE "
)


def record(db: Connection, event: str, at: str, actor_id: int | None, **where: object) -> None:
    """Record `event` at `at` for the files `where` names (by id, or by channel_id with kind,
    subdir or filename), as their rows are now: after an upload or a yank, before a delete."""
    assert event in EVENTS and where and _KEYS.issuperset(where)
    condition = " AND ".join(f"files.{column} = ?" for column in where)
    db.execute(_RECORD + condition, (at, event, actor_id, *where.values()))


def of_channel(db: Connection, channel_id: int, limit: int | None = None,
               offset: int = 0) -> list[Row]:  # fmt: skip
    """The channel's events, oldest first: all of them, or the `limit` newest after skipping
    the `offset` newest; each with the name of whoever did it (`actor`: NULL for the console,
    or a user since removed)."""
    newest = " ORDER BY at DESC, file_events.id DESC"
    if limit is not None:
        newest += f" LIMIT {int(limit)} OFFSET {int(offset)}"
    return db.execute(
        "SELECT * FROM (SELECT file_events.id, at, event, kind, package, display_name, version,"
        " subdir, filename, sha256, size, yanked_reason, users.name AS actor FROM file_events"
        " LEFT JOIN users ON users.id = file_events.actor_id WHERE channel_id = ?"
        f"{newest}) AS events ORDER BY at, id",
        (channel_id,),
    ).fetchall()


def count(db: Connection, channel_id: int) -> int:
    """How many events the channel's history holds."""
    return db.execute(
        "SELECT count(*) FROM file_events WHERE channel_id = ?", (channel_id,)
    ).fetchone()[0]


def record_listings(db: Connection, mirror_id: int, subdir: str, at: str) -> None:
    """After the mirror stored a new state of `subdir`'s upstream index at `at`: end the
    listing of each file it no longer lists, and begin one for each it lists anew."""
    db.execute(
        "UPDATE mirror_listings SET until = ? WHERE until IS NULL AND file_id IN (SELECT id"
        " FROM mirror_files WHERE mirror_id = ? AND subdir = ? AND listed = 0)",
        (at, mirror_id, subdir),
    )
    db.execute(
        "INSERT INTO mirror_listings (file_id, since) SELECT id, ? FROM mirror_files"
        " WHERE mirror_id = ? AND subdir = ? AND listed = 1 AND NOT EXISTS (SELECT 1 FROM"
        " mirror_listings WHERE file_id = mirror_files.id AND until IS NULL)",
        (at, mirror_id, subdir),
    )
