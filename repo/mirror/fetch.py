"""Mirror files: fetched from upstream on first request and streamed to that client as the
bytes arrive while they are stored and hashed (mirror.md R12), verified before the blob is
committed (R14), fetched once however many threads and workers ask at once (R13), and served
as uploads are once cached (R15); a wheel's `.metadata` likewise, verified (R19).

Single flight: the first request takes the file's lease (lease.py) with the path of its
pending blob and relays the upstream body. Any other request, in any worker, tails that file
as it grows and sends its last piece only once the lease is gone and the row names a blob
that is the very file it read; else it breaks its transfer. A leader whose process died
stops renewing: its followers break when its lease expires (lease.TERM after the last
renewal), the next request takes the lease over and fetches again, and the dead one's
pending file is left in the store's tmp/ for `repo gc`.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import BinaryIO

import httpx
from flask import Flask, Response, current_app, request

from .. import files
from ..blobs import IMMUTABLE, BlobStore, PendingBlob
from ..db import DatabaseError, now, transaction
from ..errors import NotFound
from ..logs import CutShort
from . import lease, quota, settings
from .settings import Mirror
from .upstream import (
    GONE,
    Refused,
    Upstream,
    UpstreamDown,
    bad_gateway,
    clock_of,
    for_mirror,
    unavailable,
)

log = logging.getLogger("repo.mirror")

OCTET = "application/octet-stream"
CHUNK = 64 * 1024  # what a follower reads at a time; the leader relays what httpx reads
POLL = 0.02  # seconds a follower waits for the leader's file to grow
RENEW_EVERY = lease.TERM / 6
TOUCH_EVERY = timedelta(minutes=1)  # last_download, for the LRU of R17, without a write each
METADATA_LIMIT = 16 * 1024 * 1024
ATTEMPTS = 3  # a lease that comes and goes between our looks: take it, follow it, or serve


class BrokenTransfer(CutShort):
    """Raised inside a response body so that gunicorn closes the connection before the last
    byte: pip and uv then see a failed download, never a wrong file (R14), and the log one
    line (repo.logs). Not an OSError, which gunicorn would take for the client's own socket
    error and not log at all."""


def pypi_file(db: sqlite3.Connection, channel_id: int, sha256: str,
              filename: str) -> tuple[Mirror, sqlite3.Row] | None:  # fmt: skip
    """The upstream file a channel's files URL names, if its mirror lists one; never one of a
    private or reserved name (R23), NotFound for a quarantined project (R20) or a file younger
    than the mirror's min_age (R21, by the app's clock)."""
    mirror = settings.find(db, channel_id, "pypi")
    if mirror is None:
        return None
    row = db.execute(
        "SELECT * FROM mirror_files WHERE mirror_id = ? AND sha256 = ? AND filename = ?",
        (mirror.id, sha256, filename),
    ).fetchone()
    if row is None or not settings.upstream_may_serve(db, channel_id, "pypi", row["project"]):
        return None
    page = db.execute(
        "SELECT status FROM mirror_pages WHERE mirror_id = ? AND key = ?",
        (mirror.id, row["project"]),
    ).fetchone()
    if page is not None and page["status"] == "quarantined":
        raise NotFound(f"Project '{row['project']}' is quarantined upstream (PEP 792)")
    if _too_young(db, mirror, row):
        raise NotFound(f"File '{filename}' is newer than the channel's minimum age")
    return mirror, row


def _too_young(db: sqlite3.Connection, mirror: Mirror, row: sqlite3.Row) -> bool:
    """Whether the mirror's minimum age hides the file now, as its pages do (R21)."""
    cutoff = settings.cutoff(mirror.min_age, clock_of(current_app)())
    if cutoff is None:
        return False
    query = f"SELECT {settings.YOUNG} FROM mirror_files WHERE id = ?"
    return bool(db.execute(query, (cutoff, row["id"])).fetchone()[0])


def send_blob(sha256: str, mimetype: str = OCTET, download_name: str | None = None,
              proxy: bool = False) -> Response:  # fmt: skip
    """A stored blob, sent as an upload is (repo.blobs: sendfile, Range, its sha256 as the
    ETag, or a redirect to the store); `proxy` for a PEP 658 metadata file."""
    return current_app.extensions["blobs"].send(sha256, mimetype, download_name, proxy)


def serve(app: Flask, db: sqlite3.Connection, mirror: Mirror, row: sqlite3.Row,
          mimetype: str = OCTET, fallbacks: Sequence[str] = ()) -> Response:  # fmt: skip
    """One mirror file (a mirror_files row): its blob once cached, else fetched now, checked
    against the row's sha256 (or, without one, its md5) before it is cached.

    Like send_file it reads the request: a HEAD of an uncached file answers from the row's
    size and fetches nothing (R15: uv probes with HEAD). `fallbacks` are URLs tried in turn
    when upstream answers 404 or 410 for the row's (CRAN's Archive/, R29). Cached as a blob
    always is (blobs.IMMUTABLE). Upstream down: 503 with Retry-After.
    """
    key = f"file:{mirror.id}:{row['subdir']}/{row['filename']}"
    for _ in range(ATTEMPTS):
        row = _current(db, row)
        if row["blob_sha256"] is not None:
            try:
                response = send_blob(row["blob_sha256"], mimetype, row["filename"])
            except FileNotFoundError:  # evicted (R17) since we looked: look again
                continue
            _touch(db, row)
            return response
        if request.method == "HEAD":
            return _head(row, mimetype)
        pending = app.extensions["blobs"].begin()
        if lease.take(db, key, path=pending.path):
            # Taken after the last holder committed and released: this look is the truth.
            if _current(db, row)["blob_sha256"] is None:
                relay = _Relay(db, row, key, pending, for_mirror(app, db, mirror),
                               [row["url"], *fallbacks], app.extensions["blobs"])  # fmt: skip
                return _streamed(relay, relay.size, mimetype)
            lease.release(db, key)
        pending.discard()
        tail = _Tail.follow(db, app.extensions["blobs"], row, key)
        if tail is not None:
            return _streamed(tail, row["size"], mimetype)
    raise unavailable(f"Service Unavailable: '{row['filename']}' could not be fetched; try again")


def serve_metadata(app: Flask, db: sqlite3.Connection, mirror: Mirror,
                   row: sqlite3.Row) -> Response:  # fmt: skip
    """A mirror wheel's PEP 658 metadata file: fetched on first request from `<its URL>.metadata`,
    checked against the hash upstream advertised (hashed now when it said only `true`),
    stored as a blob; never served with another hash than advertised (R19)."""
    if row["metadata_blob"] is None:
        wanted = _advertised(row["core_metadata"])
        if wanted is None:
            raise NotFound(f"File '{row['filename']}.metadata' not found upstream")
        if wanted and "sha256" not in wanted:
            raise bad_gateway(f"no sha256 to check the metadata of '{row['filename']}' by")
        with ExitStack() as stack, app.extensions["blobs"].begin() as pending:
            response = _open(stack, for_mirror(app, db, mirror), [row["url"] + ".metadata"],
                             row["filename"])  # fmt: skip
            for chunk in response.iter_raw():
                pending.write(chunk)
                if pending.size > METADATA_LIMIT:
                    raise bad_gateway(f"the metadata of '{row['filename']}' is too large")
            if wanted.get("sha256", pending.sha256) != pending.sha256:
                raise bad_gateway(f"the metadata of '{row['filename']}' has another sha256")
            if not _store(db, pending, "UPDATE mirror_files SET metadata_blob = ? WHERE id = ?"
                          " AND core_metadata IS NOT DISTINCT FROM ?",
                          (pending.sha256, row["id"], row["core_metadata"])):  # fmt: skip
                raise unavailable("Service Unavailable: the upstream page changed; try again")
        row = _current(db, row)
    return send_blob(row["metadata_blob"], proxy=True)


def _advertised(value: str | None) -> dict[str, str] | None:
    """The hashes upstream gave for a wheel's metadata file ({} for a bare `true`), or None
    when it offers none; `core_metadata` holds the PEP 691 JSON value, or the HTML attribute
    (`sha256=<hex>`, PEP 714)."""
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        name, _, digest = value.partition("=")
        return {name: digest}
    if parsed is True:
        return {}
    return parsed if isinstance(parsed, dict) else None


def _current(db: sqlite3.Connection, row: sqlite3.Row) -> sqlite3.Row:
    fresh = db.execute("SELECT * FROM mirror_files WHERE id = ?", (row["id"],)).fetchone()
    if fresh is None:
        raise NotFound(f"File '{row['filename']}' is no longer listed upstream")
    return fresh


def _touch(db: sqlite3.Connection, row: sqlite3.Row) -> None:
    """Record a download for the LRU (R17), at most once a minute per file: a write for
    every download would queue cached downloads on the database's write lock."""
    last = row["last_download"]
    if last is None or datetime.fromisoformat(last) < datetime.now(UTC) - TOUCH_EVERY:
        with transaction(db):
            db.execute("UPDATE mirror_files SET last_download = ? WHERE id = ?",
                       (now(), row["id"]))  # fmt: skip


def _head(row: sqlite3.Row, mimetype: str) -> Response:
    response = Response(mimetype=mimetype)
    response.automatically_set_content_length = False
    response.content_length = row["size"]
    response.headers["Cache-Control"] = IMMUTABLE
    return response


def _streamed(body: _Relay | _Tail, size: int | None, mimetype: str) -> Response:
    """A body sent as it comes: with Content-Length when the size is known (a short body is
    then a failed download), else chunked (then the missing last chunk is)."""
    response = Response(body, mimetype=mimetype)
    response.content_length = size
    response.headers["X-Accel-Buffering"] = "no"  # a proxy in front must not hold it back
    response.headers["Cache-Control"] = IMMUTABLE  # what a short body breaks is never kept
    return response


def _open(stack: ExitStack, upstream: Upstream, urls: Sequence[str],
          filename: str) -> httpx.Response:  # fmt: skip
    """The first of `urls` upstream answers 200 for, open in `stack`; errors as answers."""
    for url in urls:
        attempt = ExitStack()
        try:
            response = attempt.enter_context(upstream.get(url, file=True))
        except UpstreamDown as error:
            message = f"{error.message}; '{filename}' is not cached here"
            raise unavailable(message) from None
        except Refused as error:
            raise bad_gateway(str(error)) from None
        if response.status_code == 200:
            stack.push(attempt)
            return response
        attempt.close()
        if response.status_code not in GONE:
            raise bad_gateway(f"HTTP {response.status_code} from upstream for '{filename}'")
    raise NotFound(f"File '{filename}' not found upstream")


def _store(db: sqlite3.Connection, pending: PendingBlob, sql: str, params: tuple) -> bool:
    """Commit `pending` and the row that names it, durably, as files.publish does: staged
    before the write lock, committed under it once the UPDATE matched, so gc never removes a
    blob a row is about to name, and a crash leaves at most an orphan blob for gc. False when
    the row changed meanwhile; then, as on a failure, what was staged is withdrawn."""
    try:
        pending.sync()
        with transaction(db, durable=True):
            matched = db.execute(sql, params).rowcount == 1
            if matched:
                pending.commit()
    except Exception:
        files.withdraw(db, [pending])
        raise
    if not matched:
        files.withdraw(db, [pending])
    return matched


def _all_but_the_last_byte(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """`pieces` as they come but for the very last byte, sent once they ended without an
    error: when the fetch fails the client's transfer breaks before its end (R14), and until
    then it has every byte but one (R12)."""
    held = b""
    for piece in pieces:
        data = held + piece
        held = data[-1:]
        if len(data) > 1:
            yield data[:-1]
    yield held


class _Relay:
    """The leader's body: each upstream chunk goes to the pending blob (flushed, for the
    followers) before it goes to the client; the last one only once the whole file is
    verified and committed (R14)."""

    def __init__(self, db: sqlite3.Connection, row: sqlite3.Row, key: str, pending: PendingBlob,
                 upstream: Upstream, urls: Sequence[str], store: BlobStore) -> None:  # fmt: skip
        self.db, self.row, self.key, self.pending, self.store = db, row, key, pending, store
        self._stack = ExitStack()
        try:
            self.response = _open(self._stack, upstream, urls, row["filename"])
            self.size = self._size()
        except BaseException:
            self._finish()
            raise
        self._body = self._pull()

    def _size(self) -> int | None:
        announced = self.response.headers.get("content-length")
        length = int(announced) if announced and announced.isdigit() else None
        size = self.row["size"]
        if None not in (size, length) and size != length:
            raise bad_gateway(f"upstream sends {length} bytes for '{self.row['filename']}'"
                              f" but its index says {size}")  # fmt: skip
        return length if size is None else size

    def __iter__(self) -> Iterator[bytes]:
        # Closing this iterator (a client that went away) must leave _body open for close():
        # a for loop over it does, `yield from self._body` would close it.
        try:
            yield from _all_but_the_last_byte(self._body)
        except Exception as error:
            raise BrokenTransfer(f"mirror file {self.row['filename']}: {error}") from error

    def close(self) -> None:
        """Called when the response ends: a client that went away, or never read, leaves
        the download to finish here, for the cache and for the followers. A failure is logged
        here; with the client there, its BrokenTransfer was (one line each, R14)."""
        try:
            for _ in self._body:
                pass
        except Exception as error:
            log.warning("mirror file %s not cached: %s", self.row["filename"], error)

    def _pull(self) -> Iterator[bytes]:
        renewed = time.monotonic()
        try:
            # Raw: the bytes as stored upstream, whatever Content-Encoding it claims (R15).
            for chunk in self.response.iter_raw():
                self.pending.write(chunk)
                self.pending.flush()
                if self.size is not None and self.pending.size > self.size:
                    raise ValueError(f"more than the {self.size} bytes announced")
                if time.monotonic() - renewed > RENEW_EVERY:
                    lease.renew(self.db, self.key)
                    renewed = time.monotonic()
                yield chunk
            self._verify()
            moment = now()
            if _store(self.db, self.pending, "UPDATE mirror_files SET blob_sha256 = ?,"
                      " fetched = ?, last_download = ? WHERE id = ?"
                      " AND sha256 IS NOT DISTINCT FROM ? AND md5 IS NOT DISTINCT FROM ?",
                      (self.pending.sha256, moment, moment, self.row["id"], self.row["sha256"],
                       self.row["md5"])):  # fmt: skip
                self._evict()
        finally:
            self._finish()

    def _evict(self) -> None:
        """The quota (R17), once this file is cached: a failure here is logged, and the
        client, whose file is stored, still gets all of it."""
        try:
            quota.enforce(self.db, self.store, self.row["mirror_id"], keep=self.row["id"])
        except (DatabaseError, OSError) as error:
            log.warning("mirror quota not enforced after %s: %s", self.row["filename"], error)

    def _verify(self) -> None:
        """The size, then the sha256, else the md5 (CRAN's MD5sum); a row with neither (a
        CRAN Windows binary) is checked for its size only."""
        if self.size is not None and self.pending.size != self.size:
            raise ValueError(f"short body: {self.pending.size} of {self.size} bytes")
        name = "sha256" if self.row["sha256"] else "md5"
        got, expected = self.pending.digests()[name], self.row[name]
        if expected and got != expected:
            raise ValueError(f"{name} {got} instead of {expected}")

    def _finish(self) -> None:
        self._stack.close()
        self.pending.discard()
        lease.release(self.db, self.key)


class _Tail:
    """A follower's body: the leader's pending file as it grows, renewing nothing; its last
    piece only once the leader committed that very file as the row's blob (R13)."""

    def __init__(self, db: sqlite3.Connection, store: BlobStore, row: sqlite3.Row, key: str,
                 path: str, file: BinaryIO) -> None:  # fmt: skip
        self.db, self.store, self.row, self.key, self.path = db, store, row, key, path
        self.file = file
        self._chunks = self._read()
        self._first = b""

    @classmethod
    def follow(cls, db: sqlite3.Connection, store: BlobStore, row: sqlite3.Row,
               key: str) -> _Tail | None:  # fmt: skip
        """Follow the holder of `key` once its first bytes are there; None when there is no
        holder (any more), or it failed before it had any: then this request has a status
        of its own to answer with, from its own look at the row, the lease and upstream."""
        holder = lease.held(db, key)
        if holder is not None and not lease.on_this_host(holder):
            # Its file is on another server: wait for it to be done, then serve the blob.
            lease.wait(db, key, time.time() + lease.TERM)
            return None
        if holder is None or holder["path"] is None:
            return None
        try:
            file = open(holder["path"], "rb", buffering=0)  # noqa: SIM115 - closed by close()
        except FileNotFoundError:  # committed or dropped just now: look at the row again
            return None
        tail = cls(db, store, row, key, holder["path"], file)
        return tail if tail._started() else None

    def _started(self) -> bool:
        """Wait for the first bytes; False when the fetch ended before there were any."""
        try:
            self._first = next(self._chunks)
        except (BrokenTransfer, StopIteration):
            self.close()
            return False
        return True

    def __iter__(self) -> Iterator[bytes]:
        return _all_but_the_last_byte(chain([self._first], self._chunks))

    def _read(self) -> Iterator[bytes]:
        """The file's bytes as they come, until the leader is done with it."""
        done = False
        while True:
            chunk = self.file.read(CHUNK)
            if chunk:
                yield chunk
            elif done:
                return
            else:
                done = self._leader_done()
                if not done:
                    time.sleep(POLL)

    def _leader_done(self) -> bool:
        """False while the leader works; True once it committed the file being read (all of
        it is in the file then); BrokenTransfer when it failed, died or was taken over.
        The very file: a commit renames the pending file into place (the folder's blob, or
        S3's local copy), so the blob is the inode being read; a dead leader's partial file
        never passes for it."""
        holder = lease.held(self.db, self.key)
        if holder is not None and holder["path"] == self.path:
            return False
        row = _current(self.db, self.row)
        if holder is None and row["blob_sha256"] is not None:
            blob = self.store.local_path(row["blob_sha256"])
            if os.path.samestat(os.fstat(self.file.fileno()), os.stat(blob)):
                return True
        raise BrokenTransfer(f"mirror file {self.row['filename']}: the fetch it followed failed")

    def close(self) -> None:
        self.file.close()
