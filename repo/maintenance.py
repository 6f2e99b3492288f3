"""What an admin runs against a deployment, on either blob store: verify every blob (fsck),
remove what nothing references (gc), and make or restore a consistent online backup.

A blob is committed inside the transaction that inserts its row (files.publish), so gc removes
blobs under the same write lock, after a last look at what the rows reference; it also leaves
alone anything younger than a grace period, such as temp files of uploads still arriving.

A backup is a SQLite file of the database (db.copy_to_sqlite: one snapshot, on either engine)
and the blobs it references as files, in the folder's layout: a data dir that `repo fsck` can
check as it is, and that restore loads into an empty deployment of either kind.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from . import create_app, db, files
from .blobs import BlobStore, FolderBlobStore
from .cran import cache as cran_cache
from .db import transaction

CHUNK = 1024 * 1024
DEFAULT_GRACE = 3600
BACKUP_DATABASE = "repo.sqlite3"


@dataclass
class FsckReport:
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt


def referenced(connection: db.Connection) -> set[str]:
    """Every blob a row points at: uploads, wheels' METADATA and what mirrors cached."""
    return files.referenced(connection)


def sha256_of(file: BinaryIO) -> str:
    """The sha256 of what is left to read of `file`, read in chunks (never whole into memory)."""
    digest = hashlib.sha256()
    while chunk := file.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def fsck(connection: db.Connection, store: BlobStore) -> FsckReport:
    """Hash every referenced blob as the store holds it and compare it with its name."""
    report = FsckReport()
    for sha256 in sorted(referenced(connection)):
        report.checked += 1
        try:
            with store.open(sha256) as blob:
                digest = sha256_of(blob)
        except FileNotFoundError:
            report.missing.append(sha256)
            continue
        if digest != sha256:
            report.corrupt.append(sha256)
    return report


def gc(connection: db.Connection, store: BlobStore, data_dir: Path,
       grace: float = DEFAULT_GRACE, dry_run: bool = False) -> list[Path | str]:  # fmt: skip
    """Remove blobs no row references, temp files and unfinished multipart uploads of uploads
    that died, local copies of blobs no row references and R index sets no request will read
    again, when older than `grace` seconds; return what was (or, with dry_run, would be)
    removed: local files as paths, objects in a bucket as s3:// URLs."""
    stale_indexes = cran_cache.prune(connection, cran_cache.root(data_dir), grace, dry_run)
    keep = referenced(connection)
    cutoff = time.time() - grace
    temps = [p for p in store.tmp_dir.iterdir() if p.is_file() and p.stat().st_mtime <= cutoff]
    orphans = [blob for blob in store.listing() if blob.sha256 not in keep and blob.mtime <= cutoff]
    if dry_run:
        copies = store.drop_local_copies(keep, cutoff, dry_run=True)
    else:
        # An upload of the same content may have recorded one of these blobs since `keep`
        # was read: look again under the write lock, which such an upload holds from its
        # commit (on S3, a last look at the object) to its COMMIT.
        with transaction(connection):
            keep = referenced(connection)
            orphans = [blob for blob in orphans if blob.sha256 not in keep]
            for path in temps:
                path.unlink(missing_ok=True)
            copies = store.drop_local_copies(keep, cutoff)
            for blob in orphans:
                store.delete(blob.sha256)
    uploads = store.abort_stale_uploads(cutoff, dry_run)
    removed = sorted([*temps, *copies, *(blob.location for blob in orphans)], key=str)
    return removed + uploads + stale_indexes


def backup(connection: db.Connection, store: BlobStore, destination: Path,
           data_dir: Path) -> int:  # fmt: skip
    """Copy the database (one snapshot while the server runs) and then every blob it
    references, and the data dir's secret key; return the number of blobs copied."""
    destination.mkdir(parents=True)
    db.copy_to_sqlite(connection, destination / BACKUP_DATABASE)
    snapshot = sqlite3.connect(destination / BACKUP_DATABASE)
    try:
        wanted = referenced(snapshot)
    finally:
        snapshot.close()
    secret = data_dir / "secret_key"
    if secret.is_file():
        shutil.copy2(secret, destination / "secret_key")
    copied = FolderBlobStore(destination / "blobs")
    for sha256 in wanted:
        # Blobs never change after commit, and gc spares referenced ones: the copy is safe.
        target = copied.path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        with store.open(sha256) as blob, open(target, "wb") as copy:
            shutil.copyfileobj(blob, copy, CHUNK)
    return len(wanted)


def restore(source: Path, data_dir: Path, settings: dict | None = None) -> int:
    """Put a backup made by `backup` into an empty deployment, the one the environment (or
    `settings`) configures on `data_dir` (REPO_DATABASE_URL, REPO_BLOB_URL; by default the
    data dir's SQLite and blobs/): the blobs first, then the rows, so that no row is ever
    without its blob; return the blobs restored. A backup of an older schema is migrated."""
    if not (source / BACKUP_DATABASE).is_file():
        raise FileNotFoundError(f"{source} is not a backup: it has no {BACKUP_DATABASE}")
    data_dir.mkdir(parents=True, exist_ok=True)
    if (source / "secret_key").is_file() and not (data_dir / "secret_key").exists():
        shutil.copy2(source / "secret_key", data_dir / "secret_key")  # before the app makes one
    app = create_app({"DATA_DIR": str(data_dir), **(settings or {})})
    with app.app_context():
        try:
            connection = db.get_db()
            if connection.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None:
                raise FileExistsError(f"{data_dir} already has a database: restore into an"
                                      " empty one")  # fmt: skip
            store = app.extensions["blobs"]
            count = _put_blobs(source / "blobs", store)
            _load_rows(connection, source / BACKUP_DATABASE, data_dir / "restoring.sqlite3")
            # Nothing has been served here yet: the copies the uploads left are not wanted.
            store.drop_local_copies((), time.time())
        finally:
            db.close_db()
    return count


def _load_rows(connection: db.Connection, backup_file: Path, scratch: Path) -> None:
    """The backup's rows into the empty database, through a copy of the file at `scratch`
    migrated to this version's schema first (a backup of an older version is loaded too)."""
    shutil.copyfile(backup_file, scratch)
    try:
        migrating = db.connect(str(scratch))
        try:
            db.init_db(migrating, db.schema_text())
        finally:
            migrating.close()
        db.copy_from_sqlite(connection, scratch)
    finally:
        for name in (scratch.name, f"{scratch.name}-wal", f"{scratch.name}-shm"):
            (scratch.parent / name).unlink(missing_ok=True)


def _put_blobs(folder: Path, store: BlobStore) -> int:
    """Every blob file of a backup into `store`, each checked against its name on the way."""
    count = 0
    for path in sorted(folder.glob("??/??/*")):
        with store.begin() as pending, open(path, "rb") as blob:
            while chunk := blob.read(CHUNK):
                pending.write(chunk)
            if pending.sha256 != path.name:
                raise ValueError(f"{path} does not match its sha256: the backup is damaged")
            pending.commit()
        count += 1
    return count
