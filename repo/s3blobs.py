"""Blobs in an S3-compatible bucket (REPO_BLOB_URL=s3://BUCKET/PREFIX) through boto3, under
the folder's names (PREFIX/ab/cd/<sha256>) and in the folder's order (repo.blobs).

An upload still streams into a local temp file while it is hashed and checked. `sync()`, before
the database's write lock, uploads that file to its key (multipart from 8 MiB: S3 shows a key
only once its upload completes, so nobody ever reads half an object), or skips the upload when
the key holds it already (an identical re-upload). `commit()`, under the lock, looks at the key
again and uploads once more if gc removed it meanwhile: gc deletes only under that lock, so
what commit sees stays until the row that names it is in (scale-out.md §3.4). What a publish
that records no row staged is withdrawn under the lock unless a row names it (files.withdraw).

Reads go through a per-host read-through cache, DATA_DIR/blobcache, served with send_file as
the folder is (sendfile, Range, 304), or, with REPO_BLOB_REDIRECT, through a redirect to a
presigned URL valid 5 minutes. Content addressing means a cache entry is never stale; a
committed upload's temp file becomes its entry, so its host never fetches what it just sent.

Settings are boto3's own: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_DEFAULT_REGION, AWS_MAX_ATTEMPTS. Since 1.36 boto3 sends CRC32 checksums by default, which
many S3-compatible stores reject (boto/boto3#4392): for those set
AWS_REQUEST_CHECKSUM_CALCULATION=when_required and AWS_RESPONSE_CHECKSUM_VALIDATION=when_required,
and uploads then carry no SHA-256 either.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import threading
import unicodedata
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlsplit

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from flask import Response, redirect, request
from werkzeug.http import dump_options_header

from .blobs import (
    IMMUTABLE,
    BlobStore,
    FolderBlobStore,
    Listed,
    PendingBlob,
    StoreUnavailable,
    check_sha256,
    send_local,
)

log = logging.getLogger("repo.blobs")

MiB = 1024 * 1024
CHUNK = MiB
PRESIGNED_FOR = 300  # seconds: long enough to start a download, short for a leaked URL (Gitea)
# Path-style addressing works with every S3-compatible store (moto, MinIO, Ceph) and AWS
# alike; virtual hosts need DNS for each bucket. SigV4, presigned URLs too (botocore would
# presign with SigV2, which newer regions and stores refuse). Standard retries: throttling,
# 5xx and dropped connections, AWS_MAX_ATTEMPTS times (3 by default).
CLIENT_CONFIG = Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                       retries={"mode": "standard"}, connect_timeout=10, read_timeout=60,
                       max_pool_connections=32)  # fmt: skip
# Multipart from 8 MiB in 8 MiB parts, 4 at a time: an upload holds about 32 MiB in memory
# however large the file.
TRANSFER = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB,
                          max_concurrency=4)  # fmt: skip
_MISSING = {"404", "NoSuchKey", "NotFound"}

_client_lock = threading.Lock()
_clients: dict[tuple[int, str | None], object] = {}


def client(endpoint: str | None = None):
    """This process's S3 client, made on first use: after gunicorn's fork, never before it
    (a client's connections must not be shared by two processes). boto3 clients are
    thread-safe; making one is not, hence the lock. `endpoint`: the store at another address
    (where clients reach it, for presigned URLs); None: boto3's own (AWS_ENDPOINT_URL)."""
    key = (os.getpid(), endpoint)
    made = _clients.get(key)
    if made is None:
        with _client_lock:
            made = _clients.get(key)
            if made is None:
                for inherited in [known for known in _clients if known[0] != key[0]]:
                    del _clients[inherited]
                made = _clients[key] = boto3.session.Session().client(
                    "s3", endpoint_url=endpoint, config=CLIENT_CONFIG
                )
    return made


@contextmanager
def _asking(what: str) -> Iterator[None]:
    """boto3's errors as the face's: FileNotFoundError for a missing key, StoreUnavailable
    for anything else (logged here: the client hears only that the store did not answer)."""
    try:
        yield
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _MISSING:
            raise FileNotFoundError(f"{what}: no such object") from None
        log.error("blob store: %s: %s", what, error)
        raise StoreUnavailable("the blob store refused the request") from error
    except (BotoCoreError, S3UploadFailedError) as error:
        log.error("blob store: %s: %s", what, error)
        raise StoreUnavailable("the blob store did not answer") from error


class _Body(io.RawIOBase):
    """An object's body as a binary file whose read errors are the face's (see _asking)."""

    def __init__(self, body, what: str):
        self._body, self._what = body, what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        with _asking(self._what):
            data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


class S3PendingBlob(PendingBlob):
    """A pending blob that sync() uploads (staged: in the bucket, named by no row yet) and
    commit() confirms under the write lock."""

    _store: S3BlobStore

    def __init__(self, store: S3BlobStore):
        super().__init__(store)
        self.staged = False

    @property
    def stored(self) -> bool:
        return self.committed or self.staged

    def sync(self) -> None:
        """Close the file (fsynced: it becomes a cache entry, which must be whole or absent)
        and upload it, unless the key holds it already; before the write lock."""
        if self._file.closed:
            return
        super().sync()
        # Staged before the upload begins: a PUT cut off may still have landed.
        self.staged = True
        if self._store.stored_size(self.sha256) != self.size:
            self._store.upload(self)

    def _place(self, sha256: str) -> None:
        """Under the write lock (commit): make sure the key holds the content (gc may have
        removed it since sync() saw it), then keep the temp file as the local copy."""
        if self._store.stored_size(sha256) != self.size:
            self._store.upload(self)
        self._store.keep_copy(self)

    def withdraw(self) -> None:
        """Remove what sync() or commit() put in the bucket (and the local copy), for a
        publish that recorded no row; under the write lock, when no row names the blob."""
        if not self.stored:
            return
        self._store.delete(self.sha256)
        committed, self.committed, self.staged = self.committed, False, False
        if committed:
            self.discarded = True  # its temp file was the local copy, deleted with it
        else:
            self.discard()


class S3BlobStore(BlobStore):
    """Blobs in a bucket under a prefix; `local` holds the read-through cache (as a folder
    store) and, in its tmp/, the uploads being received."""

    def __init__(self, url: str, local: Path, redirect: bool = False,
                 public_endpoint: str | None = None):  # fmt: skip
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"REPO_BLOB_URL must be s3://BUCKET/PREFIX, not {url!r}")
        self.bucket = parts.netloc
        prefix = parts.path.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.redirect = redirect
        self.public_endpoint = public_endpoint
        self.cache = FolderBlobStore(local)
        self.tmp_dir = self.cache.tmp_dir

    def key(self, sha256: str) -> str:
        check_sha256(sha256)
        return f"{self.prefix}{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def begin(self) -> S3PendingBlob:
        return S3PendingBlob(self)

    def stored_size(self, sha256: str) -> int | None:
        """The size of the object under the blob's key; None when there is none."""
        try:
            return self.size(sha256)
        except FileNotFoundError:
            return None

    def upload(self, pending: S3PendingBlob) -> None:
        """Upload a pending blob's temp file to its key: one PUT, or a multipart upload that
        the key shows only once complete. With SHA-256 checksums where the store takes
        checksums at all (see the module's docstring), so that S3 checks every part."""
        extra = {}
        if client().meta.config.request_checksum_calculation == "when_supported":
            extra["ChecksumAlgorithm"] = "SHA256"
        key = self.key(pending.sha256)
        with _asking(f"upload of {self._where(key)}"):
            client().upload_file(pending.path, self.bucket, key, ExtraArgs=extra, Config=TRANSFER)

    def keep_copy(self, pending: S3PendingBlob) -> None:
        """Make a committed upload's temp file its local copy; a failure here only costs a
        fetch later."""
        target = self.cache.path(pending.sha256)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(pending.path, target)
        except OSError:
            Path(pending.path).unlink(missing_ok=True)

    def exists(self, sha256: str) -> bool:
        return self.stored_size(sha256) is not None

    def size(self, sha256: str) -> int:
        key = self.key(sha256)
        with _asking(f"HEAD {self._where(key)}"):
            return client().head_object(Bucket=self.bucket, Key=key)["ContentLength"]

    def open(self, sha256: str) -> BinaryIO:
        key = self.key(sha256)
        what = f"GET {self._where(key)}"
        with _asking(what):
            body = client().get_object(Bucket=self.bucket, Key=key)["Body"]
        return io.BufferedReader(_Body(body, what), CHUNK)

    def local_path(self, sha256: str) -> Path:
        """The cache entry, fetched first when this host has none: into a temp file, hashed
        as it comes, renamed into place once it matches its name."""
        path = self.cache.path(sha256)
        if path.is_file():
            return path
        digest = hashlib.sha256()
        fd, temp = tempfile.mkstemp(dir=self.tmp_dir, prefix="fetch-")
        try:
            with os.fdopen(fd, "wb") as copy, self.open(sha256) as body:
                while chunk := body.read(CHUNK):
                    digest.update(chunk)
                    copy.write(chunk)
                copy.flush()
                os.fsync(copy.fileno())
            if digest.hexdigest() != sha256:
                raise OSError(f"{self._where(self.key(sha256))} does not match its sha256;"
                              " run repo fsck")  # fmt: skip
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp, path)
        finally:
            Path(temp).unlink(missing_ok=True)
        return path

    def send(self, sha256: str, mimetype: str, download_name: str | None = None,
             proxy: bool = False) -> Response:  # fmt: skip
        if self.redirect and not proxy:
            return self._redirect(sha256, mimetype, download_name)
        return send_local(self.local_path(sha256), sha256, mimetype)

    def _redirect(self, sha256: str, mimetype: str, download_name: str | None) -> Response:
        """A 302 to a presigned URL of the object, which the client fetches without its
        credentials (pip, uv and R drop them on another origin). Signed for the request's
        method: uv probes with HEAD, and S3 signs the method. The 302 itself is never
        cached; the store's answer is, as a blob's always is."""
        params = {"Bucket": self.bucket, "Key": self.key(sha256), "ResponseContentType": mimetype,
                  "ResponseCacheControl": IMMUTABLE}  # fmt: skip
        if download_name:
            params["ResponseContentDisposition"] = _attachment(download_name)
        method = "head_object" if request.method == "HEAD" else "get_object"
        with _asking(f"presign {self._where(params['Key'])}"):
            url = client(self.public_endpoint).generate_presigned_url(
                method, Params=params, ExpiresIn=PRESIGNED_FOR
            )
        response = redirect(url, 302)
        response.headers["Cache-Control"] = "no-store"
        return response

    def delete(self, sha256: str) -> None:
        key = self.key(sha256)
        with _asking(f"DELETE {self._where(key)}"):
            client().delete_object(Bucket=self.bucket, Key=key)
        self.cache.delete(sha256)

    def listing(self) -> Iterator[Listed]:
        with _asking(f"listing {self._where(self.prefix)}"):
            for page in self._pages("list_objects_v2"):
                for item in page.get("Contents", []):
                    sha256 = self._named(item["Key"])
                    if sha256 is not None:
                        yield Listed(sha256, item["LastModified"].timestamp(),
                                     self._where(item["Key"]))  # fmt: skip

    def _pages(self, operation: str) -> Iterator[dict]:
        """The pages of a listing of everything under the prefix."""
        paginator = client().get_paginator(operation)
        return iter(paginator.paginate(Bucket=self.bucket, Prefix=self.prefix))

    def _named(self, key: str) -> str | None:
        """The sha256 a key of this store names; None for any other key under the prefix."""
        sha256 = key.rpartition("/")[2]
        try:
            return sha256 if self.key(sha256) == key else None
        except ValueError:
            return None

    def abort_stale_uploads(self, cutoff: float, dry_run: bool = False) -> list[str]:
        """Abort the multipart uploads idle since before `cutoff`: those of a server killed
        mid-upload, invisible but stored (and billed) until aborted."""
        aborted = []
        with _asking(f"multipart uploads under {self._where(self.prefix)}"):
            for page in self._pages("list_multipart_uploads"):
                for upload in page.get("Uploads", []):
                    if self._last_grew(upload) > cutoff:
                        continue
                    if not dry_run:
                        client().abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                        UploadId=upload["UploadId"])  # fmt: skip
                    aborted.append(f"{self._where(upload['Key'])} (unfinished upload)")
        return aborted

    def _last_grew(self, upload: dict) -> float:
        """When an unfinished upload last grew: its newest part, else its start. A slow
        upload still sending parts is alive however long ago it began (and moto reports
        every upload as begun in 2010)."""
        paginator = client().get_paginator("list_parts")
        pages = paginator.paginate(Bucket=self.bucket, Key=upload["Key"],
                                   UploadId=upload["UploadId"])  # fmt: skip
        times = [part["LastModified"].timestamp() for page in pages
                 for part in page.get("Parts", [])]  # fmt: skip
        return max([upload["Initiated"].timestamp(), *times])

    def drop_local_copies(self, keep: Collection[str], cutoff: float,
                          dry_run: bool = False) -> list[Path]:  # fmt: skip
        """Cache entries no row names (their object gone with another host's gc, or soon)."""
        dropped = []
        for entry in self.cache.listing():
            if entry.sha256 in keep or entry.mtime > cutoff:
                continue
            if not dry_run:
                self.cache.delete(entry.sha256)
            dropped.append(Path(entry.location))
        return dropped


def _attachment(name: str) -> str:
    """Content-Disposition for a download named `name`: with RFC 6266's UTF-8 form beside an
    ASCII one when it needs it, as werkzeug's send_file writes it."""
    options = {"filename": name}
    if not name.isascii():
        ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
        options = {"filename": ascii_name, "filename*": f"UTF-8''{quote(name)}"}
    return dump_options_header("attachment", options)
