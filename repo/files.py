"""Packages and their files, shared by the Python and R sides: publish, find, list, yank.

Every change bumps the channel's revision in the same transaction, so index pages and their
ETags (keyed on it) change exactly when the channel does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field

from packaging.utils import canonicalize_name

from .blobs import PendingBlob
from .db import Connection, DatabaseError, IntegrityError, Row, now, transaction
from .errors import Conflict, Invalid, NotFound
from .snapshots import history


@dataclass(frozen=True)
class NewFile:
    """What a publisher knows about a file it has verified; publish() commits its blob."""

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


@dataclass(frozen=True)
class Stored:
    """What an upload came to: where the file is, and whether this request added it (an
    identical re-upload did not)."""

    kind: str
    subdir: str
    filename: str
    created: bool


def find(db: Connection, channel_id: int, kind: str, subdir: str, filename: str):
    return db.execute(
        "SELECT * FROM files WHERE channel_id = ? AND kind = ? AND subdir = ? AND filename = ?",
        (channel_id, kind, subdir, filename),
    ).fetchone()


def existing(db: Connection, channel_id: int, new: NewFile) -> bool:
    """True when this very file is already published (an idempotent re-upload); raises
    Conflict when the name is taken by other content, and Invalid when a deleted file had
    the name with other content (PyPI's rule: a filename once used never holds other bytes;
    the same bytes again restore the file)."""
    row = find(db, channel_id, new.kind, new.subdir, new.filename)
    if row is None:
        used = db.execute(
            "SELECT sha256 FROM used_filenames WHERE channel_id = ? AND kind = ? AND subdir = ?"
            " AND filename = ?",
            (channel_id, new.kind, new.subdir, new.filename),
        ).fetchone()
        if used is not None and used["sha256"] != new.sha256:
            raise Invalid(
                f"This filename has already been used ('{new.filename}' was deleted):"
                " use a different version"
            )
        return False
    if row["sha256"] == new.sha256:
        return True
    raise Conflict(
        f"File already exists ('{new.filename}', sha256 {row['sha256'][:12]}...) "
        "with different content",
        code="file_exists",
    )


def publish(db: Connection, channel_id: int, new: NewFile, uploader_id: int,
            content: Sequence[PendingBlob]) -> bool:  # fmt: skip
    """Record a file and commit its blobs (`content`: the file's, and its METADATA's); False
    when an identical one won a race to get there first.

    The blobs are staged before the write lock (the slow part: a large file's fsync, or its
    upload to S3) and committed inside the transaction that inserts the row, once the INSERT
    has succeeded (renamed into place, or on S3 looked at again and uploaded again if gc took
    it meanwhile), and that transaction is durable (synchronous=FULL). So:
    - a crash leaves at most an unreferenced blob for gc, never a row without its file: the
      blob and its directory are fsynced before the COMMIT that makes the row durable;
    - an upload that loses the race for its name commits no blob and withdraws what it
      staged, so its 409 leaves nothing behind;
    - a blob is never in place without its row except under the write lock, inside such a
      transaction, or staged, which commit re-checks under that lock: whoever deletes an
      unreferenced blob under the lock (withdraw, gc) cannot delete one that another upload
      of the same content is about to record, since that upload's commit and INSERT are
      either committed or not yet begun.
    """
    try:
        for pending in content:
            pending.sync()
        with transaction(db, durable=True):
            _insert(db, channel_id, new, uploader_id)
            for pending in content:
                pending.commit()
    except IntegrityError:
        withdraw(db, content)
        if existing(db, channel_id, new):
            return False
        raise
    except Exception:
        withdraw(db, content)
        raise
    return True


def _insert(db: Connection, channel_id: int, new: NewFile, uploader_id: int) -> None:
    """The package's row (created or renamed) and the file's; IntegrityError when the name is
    taken in the channel."""
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
    uploaded = now()
    db.execute(
        "INSERT INTO files (package_id, channel_id, kind, subdir, version, filename,"
        " sha256, size, uploader_id, uploaded, requires_python, metadata_sha256,"
        " metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            package_id, channel_id, new.kind, new.subdir, new.version, new.filename,
            new.sha256, new.size, uploader_id, uploaded, new.requires_python,
            new.metadata_sha256, json.dumps(new.metadata, sort_keys=True),
        ),
    )  # fmt: skip
    history.record(db, "upload", uploaded, uploader_id, channel_id=channel_id, kind=new.kind,
                   subdir=new.subdir, filename=new.filename)  # fmt: skip
    _bump(db, channel_id)


# Every column that names a blob: uploads, their PEP 658 METADATA, their history (a deleted
# file's blobs stay for the snapshots from before the delete), and what mirrors cached. A
# blob none of them names may be removed (by gc, or after a failed publish).
BLOB_COLUMNS = (("files", "sha256"), ("files", "metadata_sha256"),
                ("file_events", "sha256"), ("file_events", "metadata_sha256"),
                ("mirror_files", "blob_sha256"), ("mirror_files", "metadata_blob"))  # fmt: skip


def referenced(db: Connection) -> set[str]:
    """Every blob a row names."""
    union = " UNION ".join(
        f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL" for table, column in BLOB_COLUMNS
    )
    return {row[0] for row in db.execute(union)}


def in_use(db: Connection, sha256: str) -> bool:
    """Whether any row names the blob `sha256`."""
    query = " UNION ALL ".join(
        f"SELECT 1 FROM {table} WHERE {column} = ?" for table, column in BLOB_COLUMNS
    )
    return db.execute(f"{query} LIMIT 1", (sha256,) * len(BLOB_COLUMNS)).fetchone() is not None


def withdraw(db: Connection, content: Sequence[PendingBlob]) -> None:
    """Remove the blobs a publish that recorded no row put in the store (staged on S3, lost
    the race for its name, or renamed into place before a full disk refused its COMMIT),
    unless a row names them: identical content elsewhere shares the blob. Under the write
    lock, for the reason publish gives. If even this fails, the blob is left for gc, and the
    original error is what the client hears."""
    stored = [pending for pending in content if pending.stored]
    if not stored:
        return
    with suppress(DatabaseError, OSError), transaction(db):
        for pending in stored:
            if not in_use(db, pending.sha256):
                pending.withdraw()


def _bump(db: Connection, channel_id: int) -> None:
    db.execute("UPDATE channels SET revision = revision + 1 WHERE id = ?", (channel_id,))


def projects(db: Connection, channel_id: int, kind: str) -> list[Row]:
    return db.execute(
        "SELECT display_name, name FROM packages WHERE channel_id = ? AND kind = ?"
        " AND EXISTS (SELECT 1 FROM files WHERE files.package_id = packages.id) ORDER BY name",
        (channel_id, kind),
    ).fetchall()


def _package(db: Connection, channel_id: int, kind: str, name: str):
    return db.execute(
        "SELECT * FROM packages WHERE channel_id = ? AND kind = ? AND name = ?",
        (channel_id, kind, name),
    ).fetchone()


def package_files(db: Connection, channel_id: int, kind: str, name: str):
    """The package's files, oldest first; None when the package does not exist."""
    package = _package(db, channel_id, kind, name)
    if package is None:
        return None
    return db.execute(
        "SELECT * FROM files WHERE package_id = ? ORDER BY uploaded, filename", (package["id"],)
    ).fetchall()


def by_digest(db: Connection, channel_id: int, sha256: str, filename: str):
    return db.execute(
        "SELECT * FROM files WHERE channel_id = ? AND sha256 = ? AND filename = ?",
        (channel_id, sha256, filename),
    ).fetchone()


def set_yanked(db: Connection, channel_id: int, filename: str, yanked: bool, reason: str | None,
               actor_id: int | None = None) -> None:  # fmt: skip
    """Yank (PEP 592) or unyank a file by its name in the channel; `actor_id` did it."""
    _set_yanked(db, channel_id, "filename", filename, yanked, reason, actor_id)


def set_yanked_by_id(db: Connection, channel_id: int, file_id: int, yanked: bool,
                     reason: str | None, actor_id: int | None = None) -> None:  # fmt: skip
    """Yank or unyank one file: an R file name can stand in several binary trees."""
    _set_yanked(db, channel_id, "id", file_id, yanked, reason, actor_id)


def _set_yanked(db: Connection, channel_id: int, column: str, value: str | int,
                yanked: bool, reason: str | None, actor_id: int | None) -> None:  # fmt: skip
    with transaction(db):
        cursor = db.execute(
            f"UPDATE files SET yanked = ?, yanked_reason = ? WHERE channel_id = ? AND {column} = ?",
            (int(yanked), (reason or None) if yanked else None, channel_id, value),
        )
        if cursor.rowcount == 0:
            raise NotFound(f"File '{value}' not found")
        history.record(db, "yank" if yanked else "unyank", now(), actor_id,
                       channel_id=channel_id, **{column: value})  # fmt: skip
        _bump(db, channel_id)


def delete_file(db: Connection, channel_id: int, file_id: int,
                actor_id: int | None = None) -> int:  # fmt: skip
    """Remove a file's row, and its package's when it was the last file, bumping the revision;
    return how many files the package has left. Its name and sha256 are kept in
    used_filenames, so that the name can never hold other content, and the file in its
    history, so that snapshots from before the delete still have it.

    The blob stays: snapshots serve it, and an upload of the same content may be committing
    it at this very moment.
    """
    with transaction(db):
        row = db.execute(
            "SELECT * FROM files WHERE id = ? AND channel_id = ?", (file_id, channel_id)
        ).fetchone()
        if row is None:
            raise NotFound(f"File {file_id} not found")
        db.execute(
            "INSERT INTO used_filenames (channel_id, kind, subdir, filename, sha256)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel_id, kind, subdir, filename)"
            " DO UPDATE SET sha256 = excluded.sha256",
            (channel_id, row["kind"], row["subdir"], row["filename"], row["sha256"]),
        )
        history.record(db, "delete", now(), actor_id, id=file_id)
        db.execute("DELETE FROM files WHERE id = ?", (file_id,))
        left = db.execute(
            "SELECT count(*) FROM files WHERE package_id = ?", (row["package_id"],)
        ).fetchone()[0]
        if left == 0:
            db.execute("DELETE FROM packages WHERE id = ?", (row["package_id"],))
        _bump(db, channel_id)
    return left


def named(db: Connection, channel_id: int, filename: str) -> list[Row]:
    """The channel's files of this name (an R file name can stand in several trees), each
    with its package's normalized `package` name and `display_name`."""
    return db.execute(
        "SELECT files.*, packages.name AS package, packages.display_name FROM files"
        " JOIN packages ON packages.id = files.package_id"
        " WHERE files.channel_id = ? AND files.filename = ? ORDER BY files.kind, files.subdir",
        (channel_id, filename),
    ).fetchall()


def file_in_channel(db: Connection, channel_id: int, file_id: int) -> Row:
    """A file of the channel with its package's normalized `package` name; NotFound if none."""
    row = db.execute(
        "SELECT files.*, packages.name AS package FROM files"
        " JOIN packages ON packages.id = files.package_id"
        " WHERE files.id = ? AND files.channel_id = ?",
        (file_id, channel_id),
    ).fetchone()
    if row is None:
        raise NotFound(f"File {file_id} not found")
    return row


def _like(text: str) -> str:
    """A LIKE pattern (with ESCAPE '\\') that matches names containing `text`."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def channel_packages(db: Connection, channel_id: int, query: str = "") -> list[dict]:
    """The channel's Python projects and R packages whose names contain `query`, by kind and
    name, each with its versions, file count, total size and latest upload and uploader.

    Python names are compared normalized (PEP 503), so `Demo.Pkg` finds `demo-pkg`.
    """
    rows = db.execute(
        "SELECT packages.kind, packages.name, packages.display_name,"
        " group_concat(DISTINCT files.version) AS versions, count(*) AS files,"
        " CAST(sum(files.size) AS BIGINT) AS size, max(files.uploaded) AS uploaded,"
        " (SELECT users.name FROM files AS latest JOIN users ON users.id = latest.uploader_id"
        "  WHERE latest.package_id = packages.id ORDER BY latest.uploaded DESC LIMIT 1)"
        "  AS uploader"
        " FROM packages JOIN files ON files.package_id = packages.id"
        " WHERE packages.channel_id = ?"
        # lower() on both sides: SQLite's LIKE ignores ASCII case, PostgreSQL's does not.
        " AND lower(packages.name) LIKE lower(CASE packages.kind WHEN 'pypi' THEN ? ELSE ? END)"
        " ESCAPE '\\'"
        " GROUP BY packages.id ORDER BY packages.kind DESC, packages.name",
        (channel_id, _like(canonicalize_name(query)), _like(query)),
    ).fetchall()
    return [{**row, "versions": row["versions"].split(",")} for row in rows]


def package_detail(
    db: Connection, channel_id: int, kind: str, name: str
) -> tuple[Row, list[Row]] | None:
    """(package, files) with each file's `uploader` name, newest upload first; None when the
    channel has no such package."""
    package = _package(db, channel_id, kind, name)
    if package is None:
        return None
    rows = db.execute(
        "SELECT files.*, users.name AS uploader FROM files"
        " LEFT JOIN users ON users.id = files.uploader_id"
        " WHERE files.package_id = ? ORDER BY files.uploaded DESC, files.filename",
        (package["id"],),
    ).fetchall()
    return package, rows
