"""A mirror channel's project pages through a live gunicorn (2 workers), with real pip and uv,
against FakePyPI (index and files on two ports) and a BlackHole: installs cold and warm, the
upstream stopped or silent with a page cached and without (mirror.md R3, R6, R8), a new release
after the TTL (R1), `uv pip compile --exclude-newer` as against the upstream itself (R18), a
private name shadowing a higher upstream version (R23), `repo mirror refresh` (R5), and a
restart with the upstream gone (R11).

Each test mirrors into channels of its own, so that each has its own pages and breaker.
"""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest

from .live import LiveServer, pip_install, run, tool, twine_upload, uv_install
from .upstreams import FakePyPI

JSON = "application/vnd.pypi.simple.v1+json"
DEADLINE = 30.0
INSTALLERS = {"pip": pip_install, "uv": uv_install}
_names = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("mirror-pages") / "data", workers=2)
    live.cli("user", "create", "alice", "--password", "alice-password")
    yield live
    live.stop()


@pytest.fixture(autouse=True)
def honest(fake_pypi):
    """Each test starts from an honest, listening upstream with an empty log."""
    fake_pypi.reset()
    fake_pypi.start()


def mirror_channel(server: LiveServer, source: str, *options: str) -> str:
    """A new public channel of alice's mirroring `source`; its simple index URL."""
    name = f"mirror{next(_names)}"
    server.cli("channel", "create", name, "--owner", "alice", "--public")
    server.cli("mirror", "create", name, "--type", "pypi", "--source", source, *options)
    return f"{server.url}/api/repo/{name}/simple/"


def publish(fake_pypi: FakePyPI, dists, name: str, version: str, **options) -> list:
    """Wheel and sdist of `name` `version`, built once, published upstream."""
    upload_time = options.pop("upload_time", None)
    return [fake_pypi.add(d, upload_time=upload_time) for d in dists.build(name, version,
                                                                           **options)]  # fmt: skip


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a GET of a JSON page, errors included."""
    request = urllib.request.Request(url, headers={"Accept": JSON})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def versions(index: str, project: str) -> list[str]:
    status, _, body = fetch(f"{index}{project}/")
    return json.loads(body)["versions"] if status == 200 else []


def until(predicate, deadline: float = DEADLINE):
    """Poll `predicate` until it returns something true, at most `deadline` seconds."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"not true within {deadline} s")


def installed(target, project: str) -> list[str]:
    """The versions of `project` installed under `target`, by their dist-info directories."""
    module = project.replace("-", "_")
    return sorted(p.name.removesuffix(".dist-info").split("-")[1]
                  for p in target.glob(f"{module}-*.dist-info"))  # fmt: skip


def cached_blobs(server: LiveServer, project: str) -> list[tuple[str, str | None]]:
    return server.query("SELECT sha256, blob_sha256 FROM mirror_files WHERE project = ?"
                        " AND blob_sha256 IS NOT NULL", project)  # fmt: skip


@pytest.mark.parametrize("installer", INSTALLERS)
def test_installs_through_the_mirror_cold_then_warm_without_asking_upstream_again(
    server, fake_pypi, dists, client_env, tmp_path, installer
):
    app, dep = f"{installer}-app", f"{installer}-dep"
    publish(fake_pypi, dists, dep, "1.0")
    publish(fake_pypi, dists, app, "1.0", dependencies=(dep,))
    index = mirror_channel(server, fake_pypi.index_url)

    cold = INSTALLERS[installer](client_env, tmp_path / "cold", index, app)
    asked = fake_pypi.log.count()
    warm = INSTALLERS[installer](client_env, tmp_path / "warm", index, app)

    assert cold.returncode == 0, cold.stdout + cold.stderr
    assert warm.returncode == 0, warm.stdout + warm.stderr
    for target in ("cold", "warm"):
        assert installed(tmp_path / target, app) == installed(tmp_path / target, dep) == ["1.0"]
    assert fake_pypi.log.count("/simple/*", server="index") == 2  # one page per project
    assert fake_pypi.log.count() == asked  # warm: pages within their TTL, files cached
    for project in (app, dep):  # verified against the upstream's sha256 before caching
        assert [sha == blob for sha, blob in cached_blobs(server, project)] == [True]


def test_upstream_stopped_installs_what_is_cached_and_refuses_the_rest_fast(
    server, fake_pypi, dists, client_env, tmp_path
):
    publish(fake_pypi, dists, "stop-cached", "1.0")
    publish(fake_pypi, dists, "stop-uncached", "1.0")
    index = mirror_channel(server, fake_pypi.index_url, "--ttl", "1s")
    first = pip_install(client_env, tmp_path / "first", index, "stop-cached")
    assert first.returncode == 0, first.stderr
    fake_pypi.stop()

    # Once the TTL has passed, the page answers from the cache, saying why.
    until(lambda: fetch(f"{index}stop-cached/")[1].get("X-Repo-Cache") == "stale; upstream=down")
    again = pip_install(client_env, tmp_path / "again", index, "stop-cached")
    refused = pip_install(client_env, tmp_path / "refused", index, "stop-uncached")
    status, headers, body = fetch(f"{index}stop-uncached/")

    assert again.returncode == 0, again.stderr
    assert installed(tmp_path / "again", "stop-cached") == ["1.0"]
    assert refused.returncode != 0
    # pip says no more than this of an index page it could not read, even of a 503's reason.
    assert "No matching distribution found" in refused.stderr, refused.stderr
    assert (status, headers["Retry-After"], headers["Content-Type"]) == (
        503, "1", "text/plain; charset=utf-8")  # fmt: skip
    assert f"Upstream {fake_pypi.index_url} is unavailable (cannot connect" in body.decode()


def test_a_silent_upstream_gets_the_cached_page_in_time_and_one_connection_without(
    server, fake_pypi, dists, client_env, tmp_path, black_hole
):
    publish(fake_pypi, dists, "hole-cached", "1.0")
    index = mirror_channel(server, fake_pypi.index_url, "--ttl", "1s")
    assert pip_install(client_env, tmp_path / "first", index, "hole-cached").returncode == 0
    # The upstream's address now takes connections and never answers (devpi#549).
    channel = index.rstrip("/").split("/")[-2]
    server.query("UPDATE mirrors SET source = ? WHERE channel_id ="
                 " (SELECT id FROM channels WHERE name = ?)", black_hole.url + "/simple/",
                 channel)  # fmt: skip

    stale = until(lambda: (answer := fetch(f"{index}hole-cached/"))[1].get("X-Repo-Cache")
                  and answer)  # fmt: skip
    again = pip_install(client_env, tmp_path / "again", index, "hole-cached")
    cold = mirror_channel(server, black_hole.url + "/simple/")
    before = black_hole.connections
    refused = pip_install(client_env, tmp_path / "refused", cold, "hole-cold")

    assert stale[0] == 200 and stale[1]["X-Repo-Cache"].startswith("stale")
    assert again.returncode == 0, again.stderr
    assert refused.returncode != 0
    # pip says no more than this of an index page it could not read, even of a 503's reason.
    assert "No matching distribution found" in refused.stderr, refused.stderr
    assert black_hole.connections - before <= 1  # pip's six attempts, one upstream connection


def test_a_new_upstream_release_is_installed_once_the_ttl_has_passed(
    server, fake_pypi, dists, client_env, tmp_path
):
    publish(fake_pypi, dists, "fresh-pkg", "1.0")
    index = mirror_channel(server, fake_pypi.index_url, "--ttl", "2s")
    first = pip_install(client_env, tmp_path / "first", index, "fresh-pkg")
    publish(fake_pypi, dists, "fresh-pkg", "2.0")

    until(lambda: versions(index, "fresh-pkg") == ["1.0", "2.0"])
    second = uv_install(client_env, tmp_path / "second", index, "fresh-pkg")

    assert first.returncode == second.returncode == 0, second.stderr
    assert installed(tmp_path / "first", "fresh-pkg") == ["1.0"]
    assert installed(tmp_path / "second", "fresh-pkg") == ["2.0"]


def test_refresh_checks_a_name_now_and_every_page_on_its_next_request(server, fake_pypi, dists):
    publish(fake_pypi, dists, "refresh-pkg", "1.0")
    index = mirror_channel(server, fake_pypi.index_url)
    channel = index.rstrip("/").split("/")[-2]
    assert versions(index, "refresh-pkg") == ["1.0"]
    publish(fake_pypi, dists, "refresh-pkg", "2.0")

    said = server.cli("mirror", "refresh", channel, "refresh-pkg")
    now = versions(index, "refresh-pkg")
    marked = server.cli("mirror", "refresh", channel)
    versions(index, "refresh-pkg")

    assert said == f"Checked 'refresh-pkg' upstream: found (serial {fake_pypi.serial})"
    assert now == ["1.0", "2.0"]
    assert marked == f"1 cached pages of channel '{channel}' are checked on next request"
    last = fake_pypi.log.requests("/simple/refresh-pkg/")[-1]
    assert last.headers["If-None-Match"] is not None and last.status == 304


def test_uv_compile_exclude_newer_through_the_mirror_is_as_against_upstream(
    server, fake_pypi, dists, client_env, tmp_path
):
    early, late = datetime(2024, 1, 2, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
    publish(fake_pypi, dists, "cool-dep", "1.0", upload_time=early)
    publish(fake_pypi, dists, "cool-dep", "2.0", upload_time=late)
    publish(fake_pypi, dists, "cool-pkg", "1.0", dependencies=("cool-dep",), upload_time=early)
    publish(fake_pypi, dists, "cool-pkg", "2.0", dependencies=("cool-dep>=2",), upload_time=late)
    index = mirror_channel(server, fake_pypi.index_url)
    (tmp_path / "requirements.in").write_text("cool-pkg\n")

    def compile_with(url: str):
        return run([tool("uv"), "pip", "compile", "--no-cache", "--no-header", "--python",
                    tool("python"), "--exclude-newer", "2025-01-01T00:00:00Z", "--index-url",
                    url, "requirements.in"], client_env, cwd=tmp_path)  # fmt: skip

    direct, mirrored = compile_with(fake_pypi.index_url), compile_with(index)

    assert direct.returncode == mirrored.returncode == 0, mirrored.stderr
    assert mirrored.stdout == direct.stdout
    assert "cool-pkg==1.0" in mirrored.stdout and "cool-dep==1.0" in mirrored.stdout


def test_a_private_name_shadows_a_higher_upstream_version(server, fake_pypi, dists, client_env,
                                                          tmp_path):  # fmt: skip
    index = mirror_channel(server, fake_pypi.index_url)
    channel = index.rstrip("/").split("/")[-2]
    token = server.cli("token", "create", "alice")
    uploaded = twine_upload(
        f"{server.url}/api/repo/{channel}",
        dists.build("shadow-pkg", "0.1"),
        client_env,
        token,
        "x-auth-token",
    )
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr  # fmt: skip
    publish(fake_pypi, dists, "shadow-pkg", "99.0")

    result = pip_install(client_env, tmp_path / "t", index, "shadow-pkg")

    assert result.returncode == 0, result.stderr
    assert installed(tmp_path / "t", "shadow-pkg") == ["0.1"]
    assert versions(index, "shadow-pkg") == ["0.1"]
    assert fake_pypi.log.count("/simple/shadow*") == 0  # upstream never heard the name


def test_a_reserved_prefix_is_never_asked_upstream_and_a_merged_name_is(server, fake_pypi,
                                                                         dists, client_env,
                                                                         tmp_path):  # fmt: skip
    index = mirror_channel(server, fake_pypi.index_url)
    channel = index.rstrip("/").split("/")[-2]
    publish(fake_pypi, dists, "acme-tool", "3.0")
    publish(fake_pypi, dists, "merged-pkg", "2.0")
    token = server.cli("token", "create", "alice")
    uploaded = twine_upload(f"{server.url}/api/repo/{channel}", dists.build("merged-pkg", "1.0"),
                            client_env, token, "x-auth-token")  # fmt: skip
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    assert "Reserved acme-*" in server.cli("mirror", "reserve", channel, "acme-*")
    server.cli("mirror", "merge-upstream", channel, "merged-pkg")

    refused = pip_install(client_env, tmp_path / "a", index, "acme-tool")
    merged = pip_install(client_env, tmp_path / "m", index, "merged-pkg")

    assert refused.returncode != 0
    assert fake_pypi.log.count("/simple/acme*") == 0  # the reservation held before any upload
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert installed(tmp_path / "m", "merged-pkg") == ["2.0"]  # the upstream release, merged in
    assert versions(index, "merged-pkg") == ["1.0", "2.0"]


def test_a_restart_with_the_upstream_gone_still_serves_what_was_cached(
    fake_pypi, dists, client_env, tmp_path
):
    data = tmp_path / "data"
    first = LiveServer(data, workers=2)
    try:
        first.cli("user", "create", "alice", "--password", "alice-password")
        publish(fake_pypi, dists, "restart-pkg", "1.0")
        index = mirror_channel(first, fake_pypi.index_url, "--ttl", "1s")
        assert pip_install(client_env, tmp_path / "before", index, "restart-pkg").returncode == 0
    finally:
        first.stop()
    fake_pypi.stop()

    second = LiveServer(data, workers=2, **first.storage)
    try:
        index = index.replace(first.url, second.url)
        result = pip_install(client_env, tmp_path / "after", index, "restart-pkg")
        status, headers, _ = fetch(f"{index}restart-pkg/")
    finally:
        second.stop()

    assert result.returncode == 0, result.stderr + second.log()
    assert installed(tmp_path / "after", "restart-pkg") == ["1.0"]
    assert (status, headers["X-Repo-Cache"]) == (200, "stale; upstream=down")
