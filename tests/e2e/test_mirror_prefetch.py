"""`repo mirror prefetch` fills a mirror's cache ahead of need (mirror.md R5): afterwards the
upstream can go away and what was prefetched still installs, with real pip and curl."""

from __future__ import annotations

import hashlib

import pytest

from .live import LiveServer, pip_install, run, tool


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("prefetch") / "data", workers=2)
    live.cli("user", "create", "alice", "--password", "alice-password")
    for channel in ("py", "py2", "rr"):
        live.cli("channel", "create", channel, "--owner", "alice", "--public")
    yield live
    live.stop()


def prefetch(server: LiveServer, *args: str):
    return run([tool("repo"), "--data-dir", str(server.data_dir), "mirror", "prefetch", *args],
               server.env, timeout=120)  # fmt: skip


def test_prefetched_python_files_install_with_the_upstream_gone(server, fake_pypi, dists,
                                                                client_env, tmp_path):  # fmt: skip
    for version in ("1.0", "2.0"):
        for path in dists.build("prefetched", version):
            fake_pypi.add(path)
    server.cli("mirror", "create", "py", "--type", "pypi", "--source", fake_pypi.index_url)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# what CI installs\nprefetched<2  # not the newest\n")
    fake_pypi.log.clear()

    result = prefetch(server, "py", "-r", str(requirements))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "prefetched-1.0-py3-none-any.whl: cached" in result.stdout
    assert "prefetched-1.0-py3-none-any.whl.metadata: cached" in result.stdout
    assert "3 files cached, 0 problems" in result.stdout
    agents = {request.headers["User-Agent"] for request in fake_pypi.log.requests()}
    assert len(agents) == 1 and next(iter(agents)).startswith("repo/")
    cached = server.query("SELECT filename FROM mirror_files WHERE blob_sha256 IS NOT NULL")
    assert sorted(cached) == [("prefetched-1.0-py3-none-any.whl",), ("prefetched-1.0.tar.gz",)]

    fake_pypi.stop()
    try:
        installed = pip_install(client_env, tmp_path / "site",
                                f"{server.url}/api/repo/py/simple/", "prefetched<2")  # fmt: skip
    finally:
        fake_pypi.start()

    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert [p.name for p in (tmp_path / "site").glob("*.dist-info")] == ["prefetched-1.0.dist-info"]


def test_a_requirement_no_upstream_version_matches_is_a_problem(server, fake_pypi, dists):
    for path in dists.build("lonely", "1.0"):
        fake_pypi.add(path)
    server.cli("mirror", "create", "py2", "--type", "pypi", "--source", fake_pypi.index_url)

    result = prefetch(server, "py2", "lonely>=5")

    assert result.returncode == 1
    assert "lonely>=5: no version upstream matches" in result.stdout
    assert "0 files cached, 1 problems" in result.stdout


def test_prefetched_r_packages_download_with_the_upstream_gone(server, fake_cran, r_built,
                                                               tmp_path):  # fmt: skip
    server.cli("mirror", "create", "rr", "--type", "cran", "--source", fake_cran.url + "/")

    result = prefetch(server, "rr", "--cran", "abc", "abcuser")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 files cached, 0 problems" in result.stdout
    fake_cran.stop()
    try:
        got = tmp_path / "abc_2.0.tar.gz"
        download = run([tool("curl"), "-sSf", "-o", str(got),
                        f"{server.url}/api/repo/rr/cran/src/contrib/abc_2.0.tar.gz"], {},
                       timeout=60)  # fmt: skip
    finally:
        fake_cran.start()

    assert download.returncode == 0, download.stderr
    original = r_built["abc_2.0.tar.gz"].read_bytes()
    assert hashlib.sha256(got.read_bytes()).hexdigest() == hashlib.sha256(original).hexdigest()
