"""Blobs by sha256, shared by the Python and R sides: the face every caller uses (BlobStore),
and the folder behind it by default (FolderBlobStore); repo.s3blobs is the other store.

A blob is written as a pending file inside `tmp/` while it is hashed, fsynced, then renamed
to `ab/cd/<sha256>`: a reader never sees a partial blob, and identical content is stored once.
A pending file that is not committed is removed, and `tmp/` holds nothing else.

A commit is durable when it returns: POSIX makes a rename (or a new directory) survive a power
cut only once the directory holding it is fsynced, so `ab/cd/` is fsynced after the rename,
and `ab/` and the root when `ab/` or `cd/` is new.

A large blob is hashed in threads, one per digest, while the writer goes on receiving:
hashlib releases the GIL while it hashes a large chunk, so the digests use every core.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO, NamedTuple

from flask import Response, send_file

from .errors import RepoError

# A blob is hashed in the thread that writes it until it grows past this size: most packages
# are smaller, and starting a thread per digest would cost them more than it saves.
PARALLEL_FROM = 1024 * 1024
# How many chunks a hashing thread may lag behind the writer before the writer waits: this
# bounds what a large upload holds to a few of the form parser's 1 MiB reads (the threads
# share each chunk). A longer lag measured no faster on 2 cores, only larger.
LAG = 1
# A blob's bytes never change under its name: every answer that sends one may be kept a year
# (by the client only: the channel may be private).
IMMUTABLE = "private, max-age=31536000, immutable"


class StoreUnavailable(RepoError, OSError):
    """The blob store did not answer (an S3 endpoint down, refusing, timing out): 503 to the
    client, and an OSError to code that cleans up (files.withdraw, the mirror's quota)."""

    status = 503

    def __init__(self, message: str):
        super().__init__(f"Service Unavailable: {message}; try again", headers={"Retry-After": "5"})


class Listed(NamedTuple):
    """A blob in a store's listing: its name, when it was stored (the grace period of gc
    counts from there) and where it is, as gc shows it."""

    sha256: str
    mtime: float
    location: Path | str


def check_sha256(name: str) -> str:
    """`name`, when it is a sha256 hex digest (what a blob's name always is); else ValueError."""
    if len(name) != 64 or not all(c in "0123456789abcdef" for c in name):
        raise ValueError("not a sha256 hex digest")
    return name


def send_local(path: Path, sha256: str, mimetype: str) -> Response:
    """A blob in a local file as uploads are sent: sendfile, Range, its sha256 as the ETag
    (so If-None-Match answers 304), cached as immutable."""
    response = send_file(path, mimetype=mimetype, conditional=True, etag=sha256, max_age=None)
    response.headers["Cache-Control"] = IMMUTABLE
    return response


def fsync_directory(path: Path) -> None:
    """Make the entries of the directory at `path` (a rename into it, a new name) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _HashThread:
    """One digest computed in a thread of its own, from the chunks in the order written."""

    def __init__(self, update: Callable[[bytes], None]):
        self._update = update
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blob-hash")
        self._queued: deque[Future[None]] = deque()

    def update(self, data: bytes) -> None:
        """Queue `data`; wait while more than LAG chunks are queued. Raises what hashing an
        earlier chunk raised."""
        self._queued.append(self._pool.submit(self._update, data))
        if len(self._queued) > LAG:
            self._queued.popleft().result()

    def wait(self) -> None:
        """Return once every queued chunk is hashed; raises what hashing one raised."""
        while self._queued:
            self._queued.popleft().result()

    def stop(self) -> None:
        """End the thread, dropping the chunks not yet hashed."""
        self._pool.shutdown(cancel_futures=True)


class PendingBlob:
    """A file being received: written and hashed in one pass, then committed or discarded.
    This is the folder's (commit renames it into place); repo.s3blobs uploads it instead."""

    def __init__(self, store: BlobStore):
        self._store = store
        fd, self.path = tempfile.mkstemp(dir=store.tmp_dir, prefix="upload-")
        self._file = os.fdopen(fd, "w+b")
        # By the names twine's form fields use.
        self._hashes = {
            "sha256": hashlib.sha256(),
            "blake2_256": hashlib.blake2b(digest_size=32),
            "md5": hashlib.md5(usedforsecurity=False),
        }
        self._threads: list[_HashThread] = []
        self.size = 0
        self.committed = False
        self.discarded = False

    # The file protocol werkzeug's form parser needs from a stream it spools an upload into.
    def write(self, data: bytes) -> int:
        """Write and hash `data`. On any failure (a full disk, a hash that raised) the blob is
        discarded before the error goes on: content hashed in part is never committed."""
        try:
            self._file.write(data)
            self._hash(data)
        except BaseException:
            self.discard()
            raise
        self.size += len(data)
        return len(data)

    def _hash(self, data: bytes) -> None:
        if not self._threads and self.size + len(data) > PARALLEL_FROM:
            self._threads = [_HashThread(digest.update) for digest in self._hashes.values()]
        if not self._threads:
            for digest in self._hashes.values():
                digest.update(data)
            return
        # The threads read the chunk after write() returns: a caller's buffer may change.
        chunk = bytes(data)
        for thread in self._threads:
            thread.update(chunk)

    def _settle(self) -> None:
        """Wait until everything written is hashed, and end the hashing threads; a hash that
        raised discards the blob."""
        threads, self._threads = self._threads, []
        try:
            for thread in threads:
                thread.wait()
        except BaseException:
            self.discard()
            raise
        finally:
            for thread in threads:
                thread.stop()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def flush(self) -> None:
        self._file.flush()

    def digests(self) -> dict[str, str]:
        """The hex digests of everything written, by the names twine's form fields use."""
        self._settle()
        return {name: digest.hexdigest() for name, digest in self._hashes.items()}

    @property
    def sha256(self) -> str:
        self._settle()
        return self._hashes["sha256"].hexdigest()

    @property
    def stored(self) -> bool:
        """Whether the content may be in the store under its sha256: what a publish that
        records no row must withdraw (files.withdraw). The folder's only once committed."""
        return self.committed

    def sync(self) -> None:
        """Put the content on disk and close the file: the slow part of a commit (a large
        file's fsync), which publishing does before it takes the database's write lock."""
        if self._file.closed:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def commit(self) -> str:
        """Make the content durable under its sha256 path; return the sha256 (again, if it
        was already committed)."""
        sha256 = self.sha256
        if self.committed:
            return sha256
        if self.discarded:
            raise ValueError("a discarded blob cannot be committed")
        self.sync()
        self._place(sha256)
        self.committed = True
        return sha256

    def _place(self, sha256: str) -> None:
        """Put the synced content under its name in the store: the folder renames it."""
        target = self._store.path(sha256)
        self._store.make_parents(target)
        os.replace(self.path, target)
        fsync_directory(target.parent)

    def withdraw(self) -> None:
        """Remove the committed blob again, for a publish whose row was not recorded. Only
        under the database's write lock and when no row names the blob: another upload of
        the same content renames it into place under that lock too (see files.publish)."""
        if self.committed:
            self._store.delete(self.sha256)
            self.committed = False
            self.discarded = True

    def discard(self) -> None:
        """Remove the pending file and end its hashing threads; harmless after commit or a
        previous discard."""
        threads, self._threads = self._threads, []
        for thread in threads:
            thread.stop()
        # On a full disk, closing fails to write the buffered rest: the file goes anyway.
        with suppress(OSError):
            self._file.close()
        if not self.committed and not self.discarded:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self.discarded = True

    def close(self) -> None:
        """Called by werkzeug when the request ends: a blob not committed by then is dropped."""
        self.discard()

    def __enter__(self) -> PendingBlob:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # On an exception or not: what the block did not commit is dropped (harmless after commit).
        self.discard()


class BlobStore(ABC):
    """Blobs by sha256: the narrow face callers use (warehouse's IFileStorage), so that they
    never learn where the bytes live. Uploads stream into a local temp file under `tmp_dir`
    while they are hashed (the parsers read `pending.path`), whatever the store."""

    tmp_dir: Path

    @abstractmethod
    def begin(self) -> PendingBlob:
        """A pending blob to write an upload into."""

    def holding(self, data: bytes) -> PendingBlob:
        """A pending blob of a small piece of content (such as a wheel's METADATA), written
        out: a full disk shows here, not later."""
        pending = self.begin()
        try:
            pending.write(data)
            pending.flush()
        except BaseException:
            pending.discard()
            raise
        return pending

    @abstractmethod
    def exists(self, sha256: str) -> bool:
        """Whether the blob is stored."""

    @abstractmethod
    def size(self, sha256: str) -> int:
        """The blob's size in bytes; FileNotFoundError when it is not stored."""

    @abstractmethod
    def open(self, sha256: str) -> BinaryIO:
        """The blob's bytes as a binary file to read in chunks (and close); FileNotFoundError
        when it is not stored."""

    @abstractmethod
    def local_path(self, sha256: str) -> Path:
        """A local file holding the blob, for code that needs a real file (a README read out
        of an sdist, a mirror follower's last look); FileNotFoundError when it is not
        stored. The file is never changed, but may be removed later (gc, an eviction)."""

    @abstractmethod
    def send(self, sha256: str, mimetype: str, download_name: str | None = None,
             proxy: bool = False) -> Response:  # fmt: skip
        """The response that downloads the blob: sent from a local file as uploads are
        (send_local), or a redirect to the store; `proxy` for a small file that is always
        sent from here (PEP 658 metadata), `download_name` for what a redirect calls it.
        FileNotFoundError when a local file is missing."""

    @abstractmethod
    def delete(self, sha256: str) -> None:
        """Remove the blob; harmless when it is not stored. Only under the database's write
        lock, when no row names the blob (see files.publish)."""

    @abstractmethod
    def listing(self) -> Iterator[Listed]:
        """Every stored blob, for gc."""

    def abort_stale_uploads(self, cutoff: float, dry_run: bool = False) -> list[str]:
        """End the uploads to the store begun before `cutoff` (a time.time()) and never
        completed, which a server that died leaves; what was (or would be) aborted. A store
        that writes from the local temp file in one step has none: gc cleans `tmp_dir`."""
        return []

    def drop_local_copies(self, keep: Collection[str], cutoff: float,
                          dry_run: bool = False) -> list[Path]:  # fmt: skip
        """Remove the local copies of blobs not in `keep`, last written before `cutoff`;
        what was (or would be) removed. A store that keeps no copies has none."""
        return []


class FolderBlobStore(BlobStore):
    """Blobs in one local directory, as ab/cd/<sha256> (the default store)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.tmp_dir = self.root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def begin(self) -> PendingBlob:
        return PendingBlob(self)

    def make_parents(self, path: Path) -> None:
        """Create `ab/` and `ab/cd/` of a blob's path as needed, each new one durably."""
        for directory in (path.parent.parent, path.parent):
            try:
                directory.mkdir()
            except FileExistsError:
                # Made by another upload, which fsyncs its parent. Should ours be done first,
                # our fsync of `cd/` still carries it: a journaling file system commits
                # metadata in order (ext4, xfs), so a later entry is never durable alone.
                continue
            fsync_directory(directory.parent)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def size(self, sha256: str) -> int:
        return self.path(sha256).stat().st_size

    def open(self, sha256: str) -> BinaryIO:
        return open(self.path(sha256), "rb")  # noqa: SIM115 - the caller closes it

    def local_path(self, sha256: str) -> Path:
        path = self.path(sha256)
        if not path.is_file():
            raise FileNotFoundError(f"blob {sha256} is not stored")
        return path

    def send(self, sha256: str, mimetype: str, download_name: str | None = None,
             proxy: bool = False) -> Response:  # fmt: skip
        # The app's URL already ends in the file's name: no Content-Disposition, as always.
        return send_local(self.path(sha256), sha256, mimetype)

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def listing(self) -> Iterator[Listed]:
        for path in self.root.glob("??/??/*"):
            try:
                mtime = path.stat().st_mtime
                check_sha256(path.name)
            except (FileNotFoundError, ValueError):  # removed since the glob; not a blob
                continue
            yield Listed(path.name, mtime, path)


def init_app(app) -> None:
    """The store REPO_BLOB_URL names (s3://BUCKET/PREFIX), else the data dir's blobs/."""
    url = app.config.get("BLOB_URL")
    if url:
        # boto3 is the `scale` extra's: imported only where S3 is configured.
        from .s3blobs import S3BlobStore

        local = Path(app.config["DATA_DIR"]) / "blobcache"
        app.extensions["blobs"] = S3BlobStore(url, local, app.config.get("BLOB_REDIRECT", False),
                                              app.config.get("BLOB_PUBLIC_ENDPOINT"))  # fmt: skip
    else:
        app.extensions["blobs"] = FolderBlobStore(app.config["BLOB_DIR"])
