"""A channel mirroring FakeCRAN (a CRAN-like tree indexed by real R) through a live gunicorn,
with real R: install.packages cold and warm, available.packages of source and binary trees,
remotes::install_version of an archived version, a new upstream release after the TTL, the
upstream stopped with a cached index and never reached without one, a private package that
shadows an upstream one (mirror.md R23, R26-R29). R talks only to 127.0.0.1."""

from __future__ import annotations

import gzip
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest

from .live import LiveServer, rscript
from .test_r import curl_upload, install_and_call
from .test_r_index_fidelity import r_offline_env
from .upstreams import FakeCRAN

CHANNEL = "cranmirror"
SOURCES = ("abc_2.0.tar.gz", "abcuser_1.0.tar.gz", "abcc_0.1-1.tar.gz")
LINUX_ABCC = "abcc_0.1-1_R_x86_64-pc-linux-gnu.tar.gz"
DEADLINE = 30


@pytest.fixture
def upstream(tmp_path, r_built) -> FakeCRAN:
    """abc 2.0, abcuser 1.0 and abcc 0.1-1 in src/contrib, abcc's Windows binary for R 4.2."""
    fake = FakeCRAN(tmp_path / "cran")
    fake.add(*(r_built[name] for name in SOURCES))
    fake.add_binary(r_built[LINUX_ABCC], "windows", "4.2")
    fake.log.clear()
    yield fake
    fake.stop()


@pytest.fixture
def mirror_of(tmp_path) -> Callable[..., LiveServer]:
    """A live server whose public channel mirrors `source`, on two workers."""
    servers = []

    def make(source: str, *options: str) -> LiveServer:
        (tmp_path / f"server{len(servers)}").mkdir()
        server = LiveServer(tmp_path / f"server{len(servers)}" / "data")
        servers.append(server)
        server.cli("user", "create", "alice", "--password", "alice-password")
        server.cli("channel", "create", CHANNEL, "--owner", "alice", "--public")
        server.cli("mirror", "create", CHANNEL, "--type", "cran", "--source", source, *options)
        return server

    yield make
    for server in servers:
        server.stop()


def repos(server: LiveServer) -> str:
    return f"{server.url}/api/repo/{CHANNEL}/cran"


def install(server: LiveServer, package: str, call: str, home) -> tuple[int, str]:
    """install.packages() of `package` through the mirror into a fresh library under `home`,
    then `call`'s RESULT; exit status 3 when it was not installed."""
    home.mkdir(parents=True, exist_ok=True)
    return install_and_call(repos(server), package, call, home)


def fetch(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def poll(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert time.monotonic() < deadline, f"not within {DEADLINE} s: {what}"
        time.sleep(0.2)


def file_requests(upstream: FakeCRAN) -> list[str]:
    return [request.path for request in upstream.log.requests("*.tar.gz")]


def test_install_cold_then_warm_asks_upstream_once(mirror_of, upstream, tmp_path):
    server = mirror_of(upstream.url)

    cold = install(server, "abcuser", "abcuser::abcuser_hello()", tmp_path / "cold")
    asked = [request.path for request in upstream.log.requests()]
    warm = install(server, "abcuser", "abcuser::abcuser_hello()", tmp_path / "warm")

    assert cold[0] == 0 and "RESULT: abc is 2.0" in cold[1], cold[1]
    assert warm[0] == 0 and "RESULT: abc is 2.0" in warm[1], warm[1]
    assert sorted(asked) == ["/src/contrib/PACKAGES.gz", "/src/contrib/abc_2.0.tar.gz",
                             "/src/contrib/abcuser_1.0.tar.gz"]  # fmt: skip
    assert len(upstream.log.requests()) == len(asked)  # the warm install asked nothing


def test_clients_at_once_on_two_workers_cause_one_index_fetch(mirror_of, upstream):
    server = mirror_of(upstream.url)
    upstream.faults.set("/src/contrib/PACKAGES.gz", delay=1.0)  # all ask while it is fetched
    start, answers = threading.Barrier(10), []

    def ask():
        start.wait(10)
        answers.append(fetch(f"{repos(server)}/src/contrib/PACKAGES.rds")[::2])

    threads = [threading.Thread(target=ask) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(answers) == 10 and len(set(answers)) == 1 and answers[0][0] == 200
    assert upstream.log.count("/src/contrib/PACKAGES.gz") == 1


def test_available_packages_lists_the_upstream_trees(mirror_of, upstream, tmp_path):
    server = mirror_of(upstream.url)
    code = f"""
        for (type in c("source", "win.binary")) {{
          ap <- available.packages(contriburl = contrib.url("{repos(server)}", type))
          cat(type, paste(ap[, "Package"], ap[, "Version"], ap[, "NeedsCompilation"]), "\\n")
        }}
        empty <- available.packages(contriburl = contrib.url("{repos(server)}", "mac.binary"))
        cat("mac.binary", nrow(empty), "\\n")
    """
    result = rscript(code, r_offline_env(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "source abc 2.0 no abcc 0.1-1 yes abcuser 1.0 no "
    assert lines[1] == "win.binary abcc 0.1-1 NA "
    assert lines[2] == "mac.binary 0 "  # upstream 404: an empty index, and no warning
    assert "unable to access index" not in result.stderr
    served = fetch(f"{repos(server)}/src/contrib/PACKAGES")[2]
    assert served == (upstream.root / "src/contrib/PACKAGES").read_bytes()  # every field


def test_install_version_of_an_archived_version(mirror_of, upstream, r_built, tmp_path):
    upstream.add(r_built["abc_2.1.tar.gz"])  # abc 2.0 moves to Archive/abc/
    server = mirror_of(upstream.url)
    code = f"""
        lib <- Sys.getenv("R_LIBS_USER")
        remotes::install_version("abc", "2.0", repos = "{repos(server)}", lib = lib,
                                 quiet = TRUE, upgrade = "never")
        .libPaths(c(lib, .libPaths()))
        cat("INSTALLED:", abc::abc_version(), "\\n")
    """
    result = rscript(code, r_offline_env(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "INSTALLED: 2.0 \n" in result.stdout
    assert "/src/contrib/Meta/archive.rds" in [r.path for r in upstream.log.requests()]
    assert "/src/contrib/Archive/abc/abc_2.0.tar.gz" in file_requests(upstream)
    assert f"/api/repo/{CHANNEL}/cran/src/contrib/Archive/abc/abc_2.0.tar.gz" in server.log()


def test_a_new_upstream_version_shows_after_the_ttl(mirror_of, upstream, r_built, tmp_path):
    server = mirror_of(upstream.url, "--ttl", "2s")
    index = f"{repos(server)}/src/contrib/PACKAGES.gz"
    assert b"Package: abc\nVersion: 2.0\n" in gzip.decompress(fetch(index)[2])

    upstream.add(r_built["abc_2.1.tar.gz"])
    poll(lambda: b"Package: abc\nVersion: 2.1\n" in gzip.decompress(fetch(index)[2]),
         "abc 2.1 in the mirror's index")  # fmt: skip
    installed = install(server, "abc", "abc::abc_version()", tmp_path)

    assert installed[0] == 0 and "RESULT: 2.1" in installed[1], installed[1]
    revalidations = upstream.log.requests("/src/contrib/PACKAGES.gz")
    assert any(request.headers["If-None-Match"] for request in revalidations[1:])


def test_upstream_stopped_with_a_cached_index(mirror_of, upstream, tmp_path):
    server = mirror_of(upstream.url, "--ttl", "2s")
    warmed = install(server, "abcuser", "abcuser::abcuser_hello()", tmp_path / "warm")
    assert warmed[0] == 0, warmed[1]
    upstream.stop()

    index = f"{repos(server)}/src/contrib/PACKAGES"
    poll(lambda: fetch(index)[1].get("X-Repo-Cache") == "stale; upstream=down",
         "the mirror noticing the upstream is down")  # fmt: skip
    cached = install(server, "abcuser", "abcuser::abcuser_hello()", tmp_path / "cached")
    uncached = install(server, "abcc", "abcc::abcc_twice(1:3)", tmp_path / "uncached")

    assert cached[0] == 0 and "RESULT: abc is 2.0" in cached[1], cached[1]
    assert uncached[0] == 3 and "is not available" in uncached[1], uncached[1]
    assert b"Package: abcc\n" not in fetch(index)[2]  # only what we hold is listed (R8)


def test_an_upstream_that_never_answered_fails_install_clearly(mirror_of, black_hole, tmp_path):
    server = mirror_of(black_hole.url)

    status, headers, body = fetch(f"{repos(server)}/src/contrib/PACKAGES.gz")
    installed = install(server, "abc", "abc::abc_version()", tmp_path)

    assert status == 503 and int(headers["Retry-After"]) >= 1
    assert b"unavailable" in body
    assert installed[0] == 3, installed[1]
    assert "unable to access index for repository" in installed[1]
    assert black_hole.connections == 1  # the breaker kept R's other requests from it (R7)


def test_a_private_package_shadows_the_upstream_one(mirror_of, upstream, r_built, tmp_path):
    upstream.add(r_built["abc_2.1.tar.gz"])  # upstream's abc is newer than the private one
    server = mirror_of(upstream.url)
    token = server.cli("token", "create", "alice", "--channel", CHANNEL, "--scope", "write")
    uploaded = curl_upload(f"{server.url}/api/repo/{CHANNEL}", r_built["abc_2.0.tar.gz"],
                           "cran_source_package", headers={"X-Auth": token})  # fmt: skip
    assert uploaded[0] == 200, uploaded

    installed = install(server, "abcuser", "abcuser::abcuser_hello()", tmp_path)

    assert installed[0] == 0 and "RESULT: abc is 2.0" in installed[1], installed[1]
    assert not [path for path in file_requests(upstream) if "/abc_" in path]
    assert fetch(f"{repos(server)}/src/contrib/abc_2.1.tar.gz")[0] == 404
    assert not [path for path in file_requests(upstream) if "/abc_" in path]
