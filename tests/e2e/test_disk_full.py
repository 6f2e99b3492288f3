"""A full disk while uploading: the client gets a clear 507, nothing half-written is
published or left behind, and the server goes on serving reads. The data dir lives on a small
tmpfs that the test mounts (CI runs as root)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import urllib.request

import pytest

from .live import LiveServer, pip_download, run, tool, twine_upload

SIZE = "24m"


@pytest.fixture(scope="module")
def small_disk(tmp_path_factory):
    mount_point = tmp_path_factory.mktemp("tmpfs")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs",
                              str(mount_point)], capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the disk-full test (needs root): {mounted.stderr}")
    server = LiveServer(mount_point / "data")
    yield server
    server.stop()
    subprocess.run(["umount", "-l", str(mount_point)], check=True)


def test_upload_on_a_full_disk_is_507_and_reads_go_on(small_disk, dists, client_env, tmp_path):
    s = small_disk
    s.cli("user", "create", "alice", "--password", "alice-password")
    s.cli("channel", "create", "full", "--owner", "alice")
    token = s.cli("token", "create", "alice")
    small = dists.build("fits", "1.0")
    url = f"{s.url}/api/repo/full"
    assert twine_upload(url, small, client_env, "__token__", token).returncode == 0
    rows, blobs = s.query("SELECT count(*) FROM files"), s.blobs()

    huge = tmp_path / "huge-1.0.tar.gz"
    with open(huge, "wb") as handle:
        handle.write(os.urandom(40 * 1024 * 1024))
    result = run([tool("curl"), "-sS", "-o", "/dev/stderr", "-w", "%{http_code}",
                  "-F", ":action=file_upload", "-F", "sha256_digest=" + "0" * 64,
                  "-F", f"content=@{huge}", "-H", f"X-Auth: {token}", url], client_env)  # fmt: skip

    assert result.stdout == "507", result.stdout + result.stderr
    assert "Insufficient storage: the server's disk is full" in result.stderr
    assert s.query("SELECT count(*) FROM files") == rows
    assert s.blobs() == blobs and s.pending() == []
    index = f"{s.url}/api/repo/t/{token}/full/simple"
    download = pip_download(index, tmp_path / "got", client_env, "fits")
    assert download.returncode == 0, download.stdout + download.stderr
    got = next((tmp_path / "got").iterdir())
    assert hashlib.sha256(got.read_bytes()).hexdigest() in s.blobs()
    with urllib.request.urlopen(f"{s.url}/healthz", timeout=5) as health:
        assert health.status == 200
