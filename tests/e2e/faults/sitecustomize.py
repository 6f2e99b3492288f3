"""Fault injection inside a live `repo serve`, for tests only: Python imports this module at
start-up when its folder is on PYTHONPATH, and with FAULT_INJECTION_DIR set it wraps a few
points of an upload and of the R index build. A point does nothing until a test arms it by
writing `armed.json` into that folder; then the first request to get there (in any worker)
fills the disk, pauses until the test kills the server, or waits for others to get there too.

Production code carries no hooks: what a point wraps is looked up by name, and a name that is
gone fails the server's start, so a renamed function cannot silently disarm a test.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

import repo.blobs
import repo.cran.cache
import repo.files
import repo.pypi.metadata

PAUSE = 600  # seconds: the test kills the server long before
MEET_DEADLINE = 30


def _state() -> dict:
    """Where this request stands in the database: the connection of its thread, if any, on
    either engine; and on SQLite how durable its commit is (the PRAGMA is SQLite's own)."""
    from flask import has_app_context

    from repo.db import dialect, get_db

    if not has_app_context():
        return {}
    db = get_db()
    state = {"dialect": dialect(db), "in_transaction": db.in_transaction}
    if state["dialect"] == "sqlite":
        state["synchronous"] = db.execute("PRAGMA synchronous").fetchone()[0]
    return state


def _write_atomically(path: Path, data: dict) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    partial.write_text(json.dumps(data))
    os.replace(partial, path)


def fill(filler: str | os.PathLike) -> None:
    """Write zeros into `filler` until the file system refuses even a byte."""
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (1 << 20, 4096, 1):
            block = bytes(chunk)
            try:
                while True:
                    os.write(fd, block)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)


def _truncate_wal() -> None:
    """Checkpoint the WAL into the database and cut it to zero bytes, so that the next commit
    must allocate space for it (SQLite otherwise reuses the WAL file from its start)."""
    from flask import current_app

    connection = sqlite3.connect(current_app.config["DATABASE"], timeout=10)
    try:
        busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0, "the WAL could not be truncated: a writer is active"
    finally:
        connection.close()


def _meet(folder: Path, count: int) -> None:
    """Wait until `count` requests have reached this point, then let them all go on."""
    (folder / f"arrived-{os.getpid()}-{threading.get_ident()}").touch()
    deadline = time.monotonic() + MEET_DEADLINE
    while len(list(folder.glob("arrived-*"))) < count and time.monotonic() < deadline:
        time.sleep(0.01)


def reached(point: str) -> None:
    """Act as armed.json says when it names `point`; the report goes into reached.json."""
    folder = Path(os.environ["FAULT_INJECTION_DIR"])
    armed = folder / "armed.json"
    try:
        spec = json.loads(armed.read_text())
    except FileNotFoundError:
        return
    if spec["point"] != point:
        return
    if spec["action"] == "meet":
        _meet(folder, spec["count"])
    else:
        try:
            armed.unlink()  # one request only: whichever worker's thread gets here first
        except FileNotFoundError:
            return
        if spec.get("truncate_wal"):
            _truncate_wal()
        if spec["action"] == "fill":
            fill(spec["filler"])
    _write_atomically(folder / "reached.json", {"point": point, "pid": os.getpid(), **_state()})
    if spec["action"] == "pause":
        time.sleep(PAUSE)


def _wrap(owner, name: str, before: str | None = None, after: str | None = None) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        if before:
            reached(before)
        result = original(*args, **kwargs)
        if after:
            reached(after)
        return result

    setattr(owner, name, wrapper)


class _OsOfTheIndexCache:
    """`os` as repo.cran.cache sees it, with the rename that publishes an index set wrapped:
    the point where every file of the set is written and none is visible yet."""

    def __getattr__(self, name: str):
        return getattr(os, name)

    @staticmethod
    def rename(source, destination) -> None:
        reached("index-rename")
        os.rename(source, destination)


def install() -> None:
    # The points of an upload, in order, and of an R index build.
    _wrap(repo.pypi.metadata, "read_distribution", after="distribution-read")
    _wrap(repo.files, "publish", before="publish", after="published")
    # Both stores' pending blobs commit through this one method (S3's places differently).
    _wrap(repo.blobs.PendingBlob, "commit", after="blob-committed")
    _wrap(repo.cran.cache, "_build", before="index-build")
    repo.cran.cache.os = _OsOfTheIndexCache()


if os.environ.get("FAULT_INJECTION_DIR"):
    install()
