"""A mirror's size quota (mirror.md R17): once a newly cached file takes the bytes of cached
files the mirror alone holds past its quota, the least recently downloaded go (last_download,
then fetched), and are fetched again on their next request.

Only mirror-only blobs count and go: a blob an upload (a `files` row) names is neither counted
nor evicted, and an evicted row's blob is deleted only when no other row names it (another
channel's mirror of the same file keeps it). The file just cached is never evicted, even when
it alone is larger than the quota.
"""

from __future__ import annotations

import sqlite3

from .. import files
from ..blobs import BlobStore
from ..db import transaction

# Cached rows, least recently downloaded first (never downloaded: first of all, as SQLite
# sorts NULL and PostgreSQL would not by itself), but for those whose blob an upload names.
_CANDIDATES = (
    "SELECT id, blob_sha256, metadata_blob, size FROM mirror_files"
    " WHERE mirror_id = ? AND blob_sha256 IS NOT NULL"
    " AND blob_sha256 NOT IN (SELECT sha256 FROM files)"
    " ORDER BY last_download NULLS FIRST, fetched NULLS FIRST, id"
)


def enforce(db: sqlite3.Connection, store: BlobStore, mirror_id: int, keep: int) -> list[int]:
    """Evict what takes mirror `mirror_id` past its quota, never row `keep` (the file just
    cached); the evicted rows' ids.

    Under the write lock, for the reason files.publish gives: a blob and the row that names it
    are committed together under that lock, so a blob found unreferenced here is not one that
    another fetch or upload is about to record.
    """
    with transaction(db):
        quota = db.execute("SELECT quota FROM mirrors WHERE id = ?", (mirror_id,)).fetchone()
        if quota is None or quota["quota"] is None:
            return []
        rows = [(row, _size(store, row)) for row in db.execute(_CANDIDATES, (mirror_id,))]
        total = sum(size for _, size in rows)
        evicted = []
        for row, size in rows:
            if total <= quota["quota"]:
                break
            if row["id"] == keep:
                continue
            db.execute(
                "UPDATE mirror_files SET blob_sha256 = NULL, metadata_blob = NULL WHERE id = ?",
                (row["id"],),
            )
            for blob in {row["blob_sha256"], row["metadata_blob"]} - {None}:
                if not files.in_use(db, blob):
                    store.delete(blob)
            total -= size
            evicted.append(row["id"])
    return evicted


def _size(store: BlobStore, row: sqlite3.Row) -> int:
    """The row's advertised size; the blob's own for a row without one (a CRAN binary)."""
    if row["size"] is not None:
        return row["size"]
    try:
        return store.size(row["blob_sha256"])
    except FileNotFoundError:
        return 0
