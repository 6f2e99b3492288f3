"""Packages and their files, shared by the Python and R sides: publish, find, list, yank.

Every change bumps the channel's revision in the same transaction, so index pages and their
ETags (keyed on it) change exactly when the channel does.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

from .db import now, transaction
from .errors import Conflict, NotFound


@dataclass(frozen=True)
class NewFile:
    """What a publisher knows about a file it has verified and committed to the blob store."""

    kind: str
    name: str
    display_name: str
    version: str
    filename: str
    sha256: str
    size: int
    subdir: str = ""
    requires_python: str | None = None
    metadata_sha256: str | None = None
    metadata: dict = field(default_factory=dict)


def find(db: sqlite3.Connection, channel_id: int, kind: str, subdir: str, filename: str):
    return db.execute(
        "SELECT * FROM files WHERE channel_id = ? AND kind = ? AND subdir = ? AND filename = ?",
        (channel_id, kind, subdir, filename),
    ).fetchone()


def existing(db: sqlite3.Connection, channel_id: int, new: NewFile) -> bool:
    """True when this very file is already published (an idempotent re-upload); raises
    Conflict when the name is taken by other content."""
    row = find(db, channel_id, new.kind, new.subdir, new.filename)
    if row is None:
        return False
    if row["sha256"] == new.sha256:
        return True
    raise Conflict(
        f"File already exists ('{new.filename}', sha256 {row['sha256'][:12]}...) "
        "with different content"
    )


def publish(db: sqlite3.Connection, channel_id: int, new: NewFile, uploader_id: int) -> bool:
    """Record a file; False when an identical one won a race to get there first."""
    try:
        with transaction(db):
            db.execute(
                "INSERT INTO packages (channel_id, kind, name, display_name) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (channel_id, kind, name) DO UPDATE"
                " SET display_name = excluded.display_name",
                (channel_id, new.kind, new.name, new.display_name),
            )
            package_id = db.execute(
                "SELECT id FROM packages WHERE channel_id = ? AND kind = ? AND name = ?",
                (channel_id, new.kind, new.name),
            ).fetchone()[0]
            db.execute(
                "INSERT INTO files (package_id, channel_id, kind, subdir, version, filename,"
                " sha256, size, uploader_id, uploaded, requires_python, metadata_sha256,"
                " metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    package_id, channel_id, new.kind, new.subdir, new.version, new.filename,
                    new.sha256, new.size, uploader_id, now(), new.requires_python,
                    new.metadata_sha256, json.dumps(new.metadata, sort_keys=True),
                ),
            )  # fmt: skip
            _bump(db, channel_id)
    except sqlite3.IntegrityError:
        if existing(db, channel_id, new):
            return False
        raise
    return True


def _bump(db: sqlite3.Connection, channel_id: int) -> None:
    db.execute("UPDATE channels SET revision = revision + 1 WHERE id = ?", (channel_id,))


def projects(db: sqlite3.Connection, channel_id: int, kind: str) -> list[sqlite3.Row]:
    return db.execute(
        "SELECT display_name, name FROM packages WHERE channel_id = ? AND kind = ?"
        " AND EXISTS (SELECT 1 FROM files WHERE files.package_id = packages.id) ORDER BY name",
        (channel_id, kind),
    ).fetchall()


def package_files(db: sqlite3.Connection, channel_id: int, kind: str, name: str):
    """The package's files, oldest first; None when the package does not exist."""
    package = db.execute(
        "SELECT id, display_name FROM packages WHERE channel_id = ? AND kind = ? AND name = ?",
        (channel_id, kind, name),
    ).fetchone()
    if package is None:
        return None
    return db.execute(
        "SELECT * FROM files WHERE package_id = ? ORDER BY uploaded, filename", (package["id"],)
    ).fetchall()


def by_digest(db: sqlite3.Connection, channel_id: int, sha256: str, filename: str):
    return db.execute(
        "SELECT * FROM files WHERE channel_id = ? AND sha256 = ? AND filename = ?",
        (channel_id, sha256, filename),
    ).fetchone()


def set_yanked(
    db: sqlite3.Connection, channel_id: int, filename: str, yanked: bool, reason: str | None
) -> None:
    """Yank (PEP 592) or unyank a file by its name in the channel."""
    with transaction(db):
        cursor = db.execute(
            "UPDATE files SET yanked = ?, yanked_reason = ? WHERE channel_id = ? AND filename = ?",
            (int(yanked), (reason or None) if yanked else None, channel_id, filename),
        )
        if cursor.rowcount == 0:
            raise NotFound(f"File '{filename}' not found")
        _bump(db, channel_id)
