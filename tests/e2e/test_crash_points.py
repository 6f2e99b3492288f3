"""kill -9 of the whole server (master and workers) at each point of an upload and of an R
index build, then a restart on the same data dir: the upload is wholly there or not at all,
`repo fsck` finds nothing wrong, `repo gc` removes what is left, and the same upload then
works. Each point is reached for real inside gunicorn (tests/e2e/faults), and the client is
curl; nothing in the server is mocked."""

from __future__ import annotations

import gzip
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import faults
from .live import LiveServer, tool

CHANNEL = "ops"
PACKAGES = "/cran/src/contrib/PACKAGES"
Client = subprocess.Popen
FULL = 2  # PRAGMA synchronous: SQLite fsyncs the WAL before COMMIT returns


@dataclass
class Crashing:
    """One data dir and the server of the moment on it: each crash replaces the server."""

    hooks: faults.Faults
    data_dir: Path
    work: Path
    token: str
    server: LiveServer

    @property
    def base(self) -> str:
        return f"{self.server.url}/api/repo/t/{self.token}/{CHANNEL}"

    def upload(self, upload: faults.Upload) -> Client:
        return faults.send(f"{self.server.url}/api/repo/{CHANNEL}", self.token, upload, self.work)

    def crash_at(self, point: str, start: Callable[[], Client]) -> tuple[dict, Client]:
        """Arm `point`, start a client with `start()`, kill the server once the client's
        request is there, and start a new one; the point's report and the client."""
        self.hooks.arm(point, "pause")
        client = start()
        report = self.hooks.reached()
        storage = self.server.storage
        faults.kill(self.server)
        self.hooks.disarm()
        self.server = self.hooks.server(self.data_dir, **storage)
        return report, client


@pytest.fixture(scope="module")
def crashing(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    hooks, server, work = faults.hooked(root)
    server.cli("channel", "create", CHANNEL, "--owner", "alice")
    token = server.cli("token", "create", "alice")
    state = Crashing(hooks, root / "data", work, token, server)
    yield state
    state.server.stop()


def assert_nothing_dangles(server: LiveServer) -> None:
    """fsck is clean; after `gc --grace 0` only what a row names is left, and no temp file
    or half-built R index."""
    assert "0 missing, 0 corrupt" in server.cli("fsck")
    server.cli("gc", "--grace", "0")
    assert server.pending() == []
    assert server.blobs() == faults.referenced(server)
    assert list((server.data_dir / "cache").rglob(".build-*")) == []


# The points of an upload in order, and whether the file is published once the server is
# killed there: the body is in a temp file; the blob is committed to the store (renamed into
# place, or its object confirmed in the bucket) while the row's transaction is open; the row
# is committed (the answer is not sent yet).
POINTS = [("publish", False), ("blob-committed", False), ("published", True)]
KINDS = {"wheel": faults.wheel_upload, "r": faults.r_upload}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("point", "published"), POINTS)
def test_upload_killed_at_each_point_is_all_there_or_not_at_all(crashing, kind, point,
                                                                published):  # fmt: skip
    c = crashing
    upload = KINDS[kind](kind + point.replace("-", ""))

    report, client = c.crash_at(point, lambda: c.upload(upload))

    assert faults.answer(client)[0] == 0, "the client got no answer, so nothing was acknowledged"
    if point == "blob-committed":
        # The blob is in the store only inside the transaction that inserts its row.
        assert report["in_transaction"]
    s = c.server
    filename_rows = s.query("SELECT count(*) FROM files WHERE filename = ?", upload.filename)
    assert filename_rows == [(int(published),)]
    assert faults.listed(c.base, upload) is published
    assert_nothing_dangles(s)

    status, message = faults.answer(c.upload(upload))
    assert status == 200, message
    assert ("identical content" in message) is published
    assert faults.listed(c.base, upload) and faults.downloaded(c.base, upload) == upload.data
    assert_nothing_dangles(s)


# SQLite's own durability: PRAGMA synchronous. (The scale stack's PostgreSQL runs with fsync
# off in the tests, so there is no durability of its to see.)
@pytest.mark.embedded_only
def test_blob_is_committed_inside_a_durable_sqlite_transaction(crashing):
    c = crashing
    upload = faults.wheel_upload("durable")
    c.hooks.arm("blob-committed", "meet", count=1)
    try:
        client = c.upload(upload)
        report = c.hooks.reached()
        assert faults.answer(client)[0] == 200
    finally:
        c.hooks.disarm()
    assert report["in_transaction"] and report["synchronous"] == FULL


def test_kill_while_an_r_index_is_written_leaves_no_half_built_index(crashing):
    c = crashing
    upload = faults.r_upload("rindex")
    assert faults.answer(c.upload(upload))[0] == 200
    index = f"{c.base}{PACKAGES}"

    report, client = c.crash_at("index-rename", lambda: subprocess.Popen(
        [tool("curl"), "-sS", "-w", "\n%{http_code}", index], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True))  # fmt: skip

    assert report["point"] == "index-rename" and faults.answer(client)[0] == 0
    cache = c.data_dir / "cache"
    assert len(list(cache.rglob(".build-*"))) == 1, "killed with the set written, not renamed"
    assert_nothing_dangles(c.server)
    assert faults.listed(c.base, upload)
    status, packed = faults.get(f"{c.base}{PACKAGES}.gz")
    assert status == 200 and gzip.decompress(packed) == faults.get(f"{c.base}{PACKAGES}")[1]
