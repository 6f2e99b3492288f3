"""Mirror files through a live gunicorn (2 workers) from FakePyPI: one upstream GET for many
clients at once (mirror.md R13), wrong bytes fail real pip and cache nothing (R14), a slow
upstream streams (R12), a wheel's `.metadata` is fetched once, verified (R19).

Clients find the files on the mirror's own project pages, as pip does.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import secrets
import threading
import urllib.request
from urllib.parse import urljoin, urlsplit

import pytest

from .live import LiveServer, pip_install, uv_install
from .upstreams import FakePyPI, PyPIFile

CHANNEL = "mirror"
JSON = "application/vnd.pypi.simple.v1+json"
CLIENTS = 20


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_pypi):
    """A public channel mirroring FakePyPI, on 2 workers."""
    live = LiveServer(tmp_path_factory.mktemp("mirror") / "data", workers=2)
    live.cli("user", "create", "alice", "--password", "alice-password")
    live.cli("channel", "create", CHANNEL, "--owner", "alice", "--public")
    live.cli("mirror", "create", CHANNEL, "--type", "pypi", "--source", fake_pypi.index_url)
    yield live
    live.stop()


@pytest.fixture(autouse=True)
def honest(fake_pypi):
    fake_pypi.reset()


def listed(server: LiveServer, file: PyPIFile) -> str:
    """The file's URL on the mirror's JSON page of its project (which records its row)."""
    project = file.filename.split("-")[0].replace("_", "-")
    page = f"{server.url}/api/repo/{CHANNEL}/simple/{project}/"
    request = urllib.request.Request(page, headers={"Accept": JSON})
    with urllib.request.urlopen(request, timeout=10) as response:
        entries = json.load(response)["files"]
    entry = next(entry for entry in entries if entry["filename"] == file.filename)
    assert entry["hashes"] == {"sha256": file.sha256}
    return urljoin(page, entry["url"])


def cached(server: LiveServer, file: PyPIFile) -> str | None:
    return server.query("SELECT blob_sha256 FROM mirror_files WHERE filename = ?",
                        file.filename)[0][0]  # fmt: skip


def wheel(fake_pypi: FakePyPI, dists, name: str, readme_bytes: int = 0) -> PyPIFile:
    """A wheel of `name` published upstream; a random readme makes it about that large."""
    readme = secrets.token_hex(readme_bytes // 2) if readme_bytes else ""
    return fake_pypi.add(dists.build(name, "1.0", readme=readme)[0])


def test_clients_at_once_on_two_workers_cause_one_upstream_get(server, fake_pypi, dists):
    file = wheel(fake_pypi, dists, "flight-pkg", readme_bytes=400_000)
    url = listed(server, file)
    # Slow enough that every client asks while the first one's fetch is still running.
    fake_pypi.faults.set(file.path, chunk_size=16384, chunk_delay=0.05)
    start, bodies = threading.Barrier(CLIENTS), []

    def download():
        start.wait(10)
        with urllib.request.urlopen(url, timeout=60) as response:
            bodies.append((response.status, hashlib.sha256(response.read()).hexdigest()))

    threads = [threading.Thread(target=download) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert bodies == [(200, file.sha256)] * CLIENTS, server.log()
    assert fake_pypi.log.count(file.path) == 1
    assert cached(server, file) == file.sha256


def test_wrong_bytes_fail_pip_and_cache_nothing_until_upstream_is_fixed(
    server, fake_pypi, dists, client_env, tmp_path
):
    file = wheel(fake_pypi, dists, "broken-pkg", readme_bytes=100_000)
    index = f"{server.url}/api/repo/{CHANNEL}/simple/"
    fake_pypi.faults.set(file.path, wrong_bytes=True)

    failed = pip_install(client_env, tmp_path / "failed", index, "broken-pkg")

    assert failed.returncode != 0
    assert "error: incomplete-download" in failed.stderr, failed.stderr  # pip 25.1+
    assert "Successfully installed" not in failed.stdout
    assert not (tmp_path / "failed" / "broken_pkg").exists()
    assert cached(server, file) is None
    assert file.sha256 not in server.blobs() and server.pending() == []
    fake_pypi.faults.clear()

    fixed = pip_install(client_env, tmp_path / "fixed", index, "broken-pkg")

    assert fixed.returncode == 0, fixed.stderr
    assert (tmp_path / "fixed" / "broken_pkg" / "__init__.py").exists()
    assert cached(server, file) == file.sha256 and file.sha256 in server.blobs()


def test_a_slow_upstream_streams_to_the_first_client(server, fake_pypi, dists):
    file = wheel(fake_pypi, dists, "slow-pkg", readme_bytes=20_000)
    url = urlsplit(listed(server, file))
    fake_pypi.faults.set(file.path, chunk_size=4096, chunk_delay=0.5)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)

    connection.request("GET", url.path)
    response = connection.getresponse()
    first = response.read(1)
    in_flight = cached(server, file) is None and server.pending() != []
    rest = response.read()
    connection.close()

    assert in_flight  # the first bytes came while the upstream was still sending
    assert int(response.headers["Content-Length"]) == file.size
    assert hashlib.sha256(first + rest).hexdigest() == file.sha256
    assert cached(server, file) == file.sha256


def test_uv_resolves_from_a_mirror_wheels_metadata_file(server, fake_pypi, dists, client_env,
                                                       tmp_path):  # fmt: skip
    file = wheel(fake_pypi, dists, "meta-pkg")
    index = f"{server.url}/api/repo/{CHANNEL}/simple/"

    result = uv_install(client_env, tmp_path / "t", index, "meta-pkg")

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "t" / "meta_pkg" / "__init__.py").exists()
    assert fake_pypi.log.count(file.path + ".metadata") == 1
    stored = server.query("SELECT metadata_blob FROM mirror_files WHERE filename = ?",
                          file.filename)  # fmt: skip
    assert stored == [(file.metadata_sha256,)] and file.metadata_sha256 in server.blobs()
