"""A full disk at each write of an upload and of an R index build: the client gets 507 with
a message, nothing half-written is published or left behind, reads go on, and once space is
freed the same request works. The data dir is a small tmpfs the test mounts (CI runs as root),
filled with a filler file: by the test, or by the server itself at the very moment of a write
deep inside a request (tests/e2e/faults)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import faults
from .faults.sitecustomize import fill
from .live import LiveServer

SIZE = "24m"
DISK_FULL = "Insufficient storage: the server's disk is full"
FITS = [faults.wheel_upload("fits"), faults.r_upload("rfits")]


@dataclass
class SmallDisk:
    """The server whose data dir is the small disk, and what the tests do to that disk."""

    server: LiveServer
    hooks: faults.Faults
    token: str
    work: Path
    log_start: int = 0

    @property
    def filler(self) -> Path:
        return self.server.data_dir / "filler"

    def base(self, channel: str = "full") -> str:
        return f"{self.server.url}/api/repo/t/{self.token}/{channel}"

    def upload(self, upload: faults.Upload, channel: str = "full") -> tuple[int, str]:
        url = f"{self.server.url}/api/repo/{channel}"
        return faults.answer(faults.send(url, self.token, upload, self.work))

    def logged(self) -> str:
        """The server's log since the last `full()` began."""
        return self.server.log()[self.log_start :]

    @contextmanager
    def full(self) -> Iterator[None]:
        """Whatever fills the disk inside the block, the filler is gone after it. The R index
        of the channel's revision is built first: on a full disk it can be served, not built."""
        assert all(faults.listed(self.base(), u) for u in FITS)
        self.log_start = len(self.server.log())
        try:
            yield
        finally:
            self.hooks.disarm()
            self.filler.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def disk(tmp_path_factory):
    mount_point = tmp_path_factory.mktemp("tmpfs")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs",
                              str(mount_point)], capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the disk-full test (needs root): {mounted.stderr}")
    # The data dir is the tmpfs itself: the server's log goes beside it, on a disk with room.
    hooks, server, work = faults.hooked(tmp_path_factory.mktemp("disk"), mount_point)
    for channel in ("full", "other"):
        server.cli("channel", "create", channel, "--owner", "alice")
    token = server.cli("token", "create", "alice")
    small = SmallDisk(server, hooks, token, work)
    assert [small.upload(u)[0] for u in FITS] == [200, 200]
    yield small
    server.stop()
    subprocess.run(["umount", "-l", str(mount_point)], check=True)


NO_SPACE = "refused 507: [Errno 28] No space left on device"
SQLITE_FULL = "refused 507: database or disk is full"


def assert_refused_and_reads_go_on(disk: SmallDisk, answer: tuple[int, str], rows: list,
                                   reason: str) -> None:  # fmt: skip
    """The upload was answered 507 for `reason` (as logged) and left nothing behind; the
    channel's files and indexes are served as before."""
    assert answer == (507, f"{DISK_FULL}; nothing was stored")
    assert reason in disk.logged()
    s = disk.server
    assert s.query("SELECT filename, sha256 FROM files ORDER BY id") == rows
    assert s.blobs() == faults.referenced(s) and s.pending() == []
    assert all(
        faults.listed(disk.base(), u) and faults.downloaded(disk.base(), u) == u.data for u in FITS
    )
    assert faults.get(f"{s.url}/healthz") == (200, b"ok\n")


def assert_works_once_freed(disk: SmallDisk, upload: faults.Upload) -> None:
    status, message = disk.upload(upload)
    assert status == 200, message
    assert (
        faults.listed(disk.base(), upload) and faults.downloaded(disk.base(), upload) == upload.data
    )
    assert disk.server.blobs() == faults.referenced(disk.server) and disk.server.pending() == []
    assert "0 missing, 0 corrupt" in disk.server.cli("fsck")


def rows(disk: SmallDisk) -> list:
    return disk.server.query("SELECT filename, sha256 FROM files ORDER BY id")


def test_disk_full_while_the_form_spools(disk):
    upload = faults.wheel_upload("spools", variant=os.urandom(1 << 20))
    before = rows(disk)
    with disk.full():
        fill(disk.filler)
        os.truncate(disk.filler, disk.filler.stat().st_size - (256 << 10))  # 1/4 of the file
        assert_refused_and_reads_go_on(disk, disk.upload(upload), before, NO_SPACE)
    assert_works_once_freed(disk, upload)


def test_disk_full_once_the_file_is_received(disk):
    # The file is in blobs/tmp and read; the next write is the wheel's METADATA blob.
    upload = faults.wheel_upload("received")
    before = rows(disk)
    with disk.full():
        disk.hooks.arm("distribution-read", "fill", filler=str(disk.filler))
        assert_refused_and_reads_go_on(disk, disk.upload(upload), before, NO_SPACE)
    assert_works_once_freed(disk, upload)


# SQLite's WAL on the full disk: the scale stack's database is PostgreSQL's, on a disk of its own.
@pytest.mark.embedded_only
@pytest.mark.parametrize("shared", [False, True], ids=["new-content", "content-in-another-channel"])
@pytest.mark.parametrize("make", [faults.r_upload, faults.wheel_upload], ids=["r", "wheel"])
def test_disk_full_while_sqlite_commits(disk, make, shared):
    upload = make(f"commits{int(shared)}")
    if shared:
        assert disk.upload(upload, "other")[0] == 200
    before = rows(disk)
    with disk.full():
        # Filled as publishing starts, the WAL emptied first: the only write left to fail is
        # SQLite's, of the row's transaction into the WAL, after the blob is renamed into
        # place. The blob goes again, unless the other channel's row names it.
        disk.hooks.arm("publish", "fill", filler=str(disk.filler), truncate_wal=True)
        assert_refused_and_reads_go_on(disk, disk.upload(upload), before, SQLITE_FULL)
    if shared:
        assert faults.listed(disk.base("other"), upload)
    assert_works_once_freed(disk, upload)


def test_disk_full_while_an_r_index_is_written(disk):
    upload = faults.r_upload("rindex")
    index = f"{disk.base()}/cran/src/contrib/PACKAGES"
    with disk.full():
        assert disk.upload(upload)[0] == 200  # a new revision, its index not built yet
        disk.hooks.arm("index-build", "fill", filler=str(disk.filler))
        assert faults.get(index) == (507, f"{DISK_FULL}; try again later\n".encode())
        assert NO_SPACE in disk.logged()
        assert list((disk.server.data_dir / "cache").rglob(".build-*")) == []
        assert (
            faults.listed(disk.base(), FITS[0])
            and faults.downloaded(disk.base(), FITS[1]) == FITS[1].data
        )
    assert faults.listed(disk.base(), upload)
