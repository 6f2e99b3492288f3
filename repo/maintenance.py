"""What an admin runs against a data dir: verify every blob (fsck), remove what nothing
references (gc), and make or restore a consistent online backup.

A blob is renamed into place inside the transaction that inserts its row (files.publish), so
gc removes blobs under the same write lock, after a last look at what the rows reference; it
also leaves alone anything younger than a grace period, such as temp files of uploads still
arriving.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import files
from .blobs import BlobStore
from .cran import cache as cran_cache
from .db import transaction

CHUNK = 1024 * 1024
DEFAULT_GRACE = 3600


@dataclass
class FsckReport:
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt


def referenced(db: sqlite3.Connection) -> set[str]:
    """Every blob a row points at: uploads, wheels' METADATA and what mirrors cached."""
    return files.referenced(db)


def sha256_of(path: Path) -> str:
    """The sha256 of a file, read in chunks (never whole into memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fsck(db: sqlite3.Connection, store: BlobStore) -> FsckReport:
    """Hash every referenced blob and compare it with its name."""
    report = FsckReport()
    for sha256 in sorted(referenced(db)):
        report.checked += 1
        path = store.path(sha256)
        if not path.is_file():
            report.missing.append(sha256)
        elif sha256_of(path) != sha256:
            report.corrupt.append(sha256)
    return report


def gc(db: sqlite3.Connection, store: BlobStore, data_dir: Path, grace: float = DEFAULT_GRACE,
       dry_run: bool = False) -> list[Path]:  # fmt: skip
    """Remove blobs no row references, temp files of uploads that died and R index sets no
    request will read again, when older than `grace` seconds; return what was (or, with
    dry_run, would be) removed."""
    stale_indexes = cran_cache.prune(db, cran_cache.root(data_dir), grace, dry_run)
    keep = referenced(db)
    cutoff = time.time() - grace
    doomed = [p for p in store.tmp_dir.iterdir() if p.is_file()]
    doomed += [p for p in store.root.glob("??/??/*") if p.name not in keep]
    doomed = [p for p in doomed if p.stat().st_mtime <= cutoff]
    if not dry_run:
        # An upload of the same content may have recorded one of these blobs since `keep`
        # was read: look again under the write lock, which such an upload holds from its
        # rename to its COMMIT.
        with transaction(db):
            keep = referenced(db)
            doomed = [p for p in doomed if p.parent == store.tmp_dir or p.name not in keep]
            for path in doomed:
                path.unlink(missing_ok=True)
    return sorted(doomed) + stale_indexes


def backup(db: sqlite3.Connection, store: BlobStore, destination: Path) -> int:
    """Copy the database (SQLite's online backup: a consistent snapshot while the server
    runs) and then every blob it references; return the number of blobs copied."""
    destination.mkdir(parents=True)
    target = sqlite3.connect(destination / "repo.sqlite3")
    try:
        db.backup(target)
    finally:
        target.close()
    snapshot = sqlite3.connect(destination / "repo.sqlite3")
    try:
        wanted = referenced(snapshot)
    finally:
        snapshot.close()
    secret = store.root.parent / "secret_key"
    if secret.is_file():
        shutil.copy2(secret, destination / "secret_key")
    copied = BlobStore(destination / "blobs")
    for sha256 in wanted:
        # Blobs never change after commit, and gc spares referenced ones: the copy is safe.
        copied.path(sha256).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(store.path(sha256), copied.path(sha256))
    return len(wanted)


def restore(source: Path, data_dir: Path) -> int:
    """Put a backup made by `backup` into an empty data dir; return the blobs restored."""
    if (data_dir / "repo.sqlite3").exists():
        raise FileExistsError(f"{data_dir} already has a database: restore into an empty one")
    if not (source / "repo.sqlite3").is_file():
        raise FileNotFoundError(f"{source} is not a backup: it has no repo.sqlite3")
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source / "blobs", data_dir / "blobs", dirs_exist_ok=True)
    if (source / "secret_key").is_file() and not (data_dir / "secret_key").exists():
        shutil.copy2(source / "secret_key", data_dir / "secret_key")
    partial = data_dir / "repo.sqlite3.restoring"
    shutil.copy2(source / "repo.sqlite3", partial)
    os.replace(partial, data_dir / "repo.sqlite3")
    return sum(1 for _ in (data_dir / "blobs").glob("??/??/*"))
