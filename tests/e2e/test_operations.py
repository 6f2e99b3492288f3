"""Operating a live server: a worker killed mid-upload, fsck, gc, and an online backup
restored into a new server that serves the same files to real pip."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from .. import conftest
from ..unit.builders import r_source
from .faults import kill, workers_of
from .live import LiveServer, pip_download, run, tool, twine_upload


@pytest.fixture(scope="module")
def shop(live_server, dists, tmp_path_factory):
    """alice's private channel `ops` holding one project uploaded with twine."""
    s = live_server
    s.cli("user", "create", "alice", "--password", "alice-password")
    s.cli("channel", "create", "ops", "--owner", "alice")
    token = s.cli("token", "create", "alice")
    paths = dists.build("ops-demo", "1.0")
    env = {"HOME": str(tmp_path_factory.mktemp("uploader")), "PATH": "/usr/bin:/bin"}
    result = twine_upload(f"{s.url}/api/repo/ops", paths, env, "__token__", token)
    assert result.returncode == 0, result.stdout + result.stderr
    return SimpleNamespace(token=token, paths=paths)


def start_upload_and_stall(server: LiveServer, token: str) -> socket.socket:
    """Send the headers and the first half of a 3 MB upload, then stop sending: more than
    the 1 MiB the upload's form parser reads at a time, so part of it reaches the disk."""
    boundary = "stall"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name=":action"\r\n\r\nfile_upload\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
        f'filename="stall-1.0.tar.gz"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    body_length = len(head) + 3_000_000
    host, port = server.host.split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(
        f"POST /api/repo/t/{token}/ops HTTP/1.1\r\nHost: {server.host}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {body_length}\r\n\r\n".encode()
        + head
        + os.urandom(1_500_000)
    )
    return sock


def wait_for(condition, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_worker_killed_mid_upload_leaves_nothing_visible(live_server, shop):
    s = live_server
    files_before, blobs_before = s.query("SELECT count(*) FROM files"), s.blobs()
    sock = start_upload_and_stall(s, shop.token)
    assert wait_for(lambda: any(os.path.getsize(path) > 500_000 for path in s.pending()))
    old_workers = workers_of(s)
    for pid in old_workers:
        os.kill(pid, signal.SIGKILL)
    sock.close()
    assert wait_for(lambda: len(set(workers_of(s)) - set(old_workers)) == 2)
    assert s.query("SELECT count(*) FROM files") == files_before
    assert s.blobs() == blobs_before
    assert len(s.pending()) == 1, "the killed upload's temp file stays until gc"
    removed = s.cli("gc", "--grace", "0")
    assert "1 files removed" in removed
    assert s.pending() == [] and s.blobs() == blobs_before
    assert "checked 3 blobs: 0 missing, 0 corrupt" in s.cli("fsck")


# A blob's age is its file's mtime, or its object's LastModified, which S3 lets nobody set:
# an orphan is made old for gc by a grace of 0, not by going back in time.
def test_gc_spares_referenced_and_young_blobs(live_server, shop):
    s = live_server
    orphan = "abcd" + "0" * 60
    s.plant(orphan, b"nobody points at me")
    assert "0 files removed" in s.cli("gc")  # young: an upload may be committing it
    assert orphan in s.blobs()
    assert "1 files removed" in s.cli("gc", "--grace", "0")
    assert orphan not in s.blobs()
    assert len(s.blobs()) == 3


def test_gc_dry_run_lists_what_gc_then_removes(live_server, shop):
    s = live_server
    orphan = "ef01" + "0" * 60
    where = s.plant(orphan, b"left over")

    listed = s.cli("gc", "--dry-run", "--grace", "0")

    assert f"would remove {where}" in listed and "1 files to remove" in listed
    assert orphan in s.blobs()
    assert f"removed {where}" in s.cli("gc", "--grace", "0")
    assert orphan not in s.blobs()


def test_backup_taken_while_uploads_run_restores_consistent(live_server, shop, tmp_path):
    s = live_server
    packages = []
    for i in range(12):
        version = f"3.{i}"
        path = tmp_path / f"abc_{version}.tar.gz"
        path.write_bytes(r_source(r_source_description(version)))
        packages.append(path)
    curl = [tool("curl"), "-sS", "-f", "-H", f"X-Auth: {shop.token}", "-F",
            "filetype=cran_source_package"]  # fmt: skip
    uploads = [subprocess.Popen([*curl, "-F", f"content=@{path}", f"{s.url}/api/repo/ops"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for path in packages]  # fmt: skip

    s.cli("backup", str(tmp_path / "backup"))

    for upload in uploads:
        _, error = upload.communicate(timeout=60)
        assert upload.returncode == 0, error
    restored = tmp_path / "restored"
    storage = restore(tmp_path / "backup", restored)
    fsck = repo(restored, storage, "fsck")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert "blobs: 0 missing, 0 corrupt" in fsck.stdout


def repo(data_dir: Path, storage: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """The `repo` command on `data_dir` and `storage` (a server's, or a restore's)."""
    return subprocess.run([tool("repo"), "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, **storage})  # fmt: skip


def restore(backup: Path, data_dir: Path) -> dict[str, str]:
    """`repo restore` of `backup` into a new deployment on `data_dir`, on the stack of the run
    (on `--stack=scale`, a new database and bucket); the settings that reach it."""
    storage = conftest.STACK.environ()
    result = repo(data_dir, storage, "restore", str(backup))
    assert result.returncode == 0, result.stderr
    return storage


def r_source_description(version: str) -> bytes:
    return f"Package: abc\nVersion: {version}\nTitle: T\nLicense: MIT\n".encode()


def test_fsck_reports_missing_and_corrupt_blobs(live_server, shop, tmp_path):
    s = live_server
    copy = tmp_path / "copy"
    s.cli("backup", str(copy))
    blobs = sorted(copy.glob("blobs/??/??/*"))
    blobs[0].write_bytes(b"bit rot")
    blobs[1].unlink()
    result = repo(copy, {}, "fsck")  # the backup is a data dir of the embedded stack
    assert result.returncode == 1
    assert f"corrupt {blobs[0].name}" in result.stderr
    assert f"missing {blobs[1].name}" in result.stderr


def test_backup_restores_into_a_server_that_serves_the_same_files(
    live_server, shop, client_env, tmp_path
):
    s = live_server
    s.cli("backup", str(tmp_path / "backup"))
    restored = tmp_path / "restored"
    server = LiveServer(restored, **restore(tmp_path / "backup", restored))
    try:
        assert "Created user 'admin'" not in server.log()
        url = f"{server.url}/api/repo/t/{shop.token}/ops/simple"
        download = pip_download(url, tmp_path / "got", client_env, "ops-demo")
        assert download.returncode == 0, download.stdout + download.stderr
        got = next((tmp_path / "got").iterdir())
        original = next(p for p in shop.paths if p.name == got.name)
        assert (
            hashlib.sha256(got.read_bytes()).digest()
            == hashlib.sha256(original.read_bytes()).digest()
        )
    finally:
        server.stop()


def loose_modes(root: Path) -> list[str]:
    """Every file not 0600 and folder not 0700 under `root` (root itself included)."""
    loose = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077 or (path.is_dir() and mode != 0o700):
            loose.append(f"{oct(mode)} {path}")
    return loose


def test_data_dir_and_backup_are_private_to_the_user(dists, client_env, tmp_path):
    # A server of its own: other tests here plant files in the shared one's data dir.
    s = LiveServer(tmp_path / "data")
    try:
        s.cli("user", "create", "alice", "--password", "alice-password")
        s.cli("channel", "create", "ops", "--owner", "alice")
        token = s.cli("token", "create", "alice")
        uploaded = twine_upload(f"{s.url}/api/repo/ops", dists.build("ops-demo", "1.0"),
                                client_env, "__token__", token)  # fmt: skip
        assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
        package = tmp_path / "abc_2.1.tar.gz"
        package.write_bytes(r_source())
        curl = [tool("curl"), "-sS", "-f", "-H", f"X-Auth: {token}"]
        upload = run([*curl, "-F", "filetype=cran_source_package", "-F", f"content=@{package}",
                      f"{s.url}/api/repo/ops"], client_env)  # fmt: skip
        assert upload.returncode == 0, upload.stderr
        index = run([*curl, f"{s.url}/api/repo/ops/cran/src/contrib/PACKAGES"], client_env)
        assert "Package: abc" in index.stdout
        s.cli("backup", str(tmp_path / "backup"))

        # The database and its WAL, the secret key, blobs (on the scale stack, the local
        # copies of the bucket's), the R index cache, the backup.
        local = ["blobcache"] if conftest.STACK.scale else ["repo.sqlite3-wal", "blobs"]
        assert all((s.data_dir / name).exists() for name in ["cache", *local])
        assert loose_modes(s.data_dir) == []
        assert loose_modes(tmp_path / "backup") == []
    finally:
        s.stop()


def test_restore_refuses_a_data_dir_in_use(live_server, shop, tmp_path):
    s = live_server
    s.cli("backup", str(tmp_path / "backup"))
    result = repo(s.data_dir, s.storage, "restore", str(tmp_path / "backup"))
    assert result.returncode == 1
    assert "already has a database" in result.stderr


def test_healthz_answers_ok(live_server):
    import urllib.request

    with urllib.request.urlopen(f"{live_server.url}/healthz", timeout=5) as response:
        assert response.status == 200 and response.read() == b"ok\n"


def test_acknowledged_upload_survives_killing_the_whole_server(dists, client_env, tmp_path):
    server = LiveServer(tmp_path / "data")
    try:
        server.cli("user", "create", "alice", "--password", "alice-password")
        server.cli("channel", "create", "ops", "--owner", "alice")
        token = server.cli("token", "create", "alice")
        paths = dists.build("ops-demo", "1.0")
        result = twine_upload(f"{server.url}/api/repo/ops", paths, client_env, "__token__",
                              token)  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        kill(server)
    finally:
        server.stop()
    again = LiveServer(tmp_path / "data", **server.storage)
    try:
        url = f"{again.url}/api/repo/t/{token}/ops/simple"
        download = pip_download(url, tmp_path / "got", client_env, "ops-demo")
        assert download.returncode == 0, download.stdout + download.stderr
        assert "checked 3 blobs: 0 missing, 0 corrupt" in again.cli("fsck")
    finally:
        again.stop()
