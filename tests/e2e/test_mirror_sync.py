"""An active mirror syncs on its own (mirror.md R0): a real gunicorn with two workers caches
the allow-list without any client request, once per period for both workers, picks up a new
upstream release on a later sync, and what it synced installs with real pip after the upstream
is gone. `repo mirror sync` runs it at once."""

from __future__ import annotations

import json
import time

import pytest

from .live import LiveServer, pip_install, run, tool

PERIOD = "3s"
DEADLINE = 60.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("sync") / "data", workers=2)
    live.cli("user", "create", "alice", "--password", "alice-password")
    for channel in ("active", "now"):
        live.cli("channel", "create", channel, "--owner", "alice", "--public")
    yield live
    live.stop()


def listing(server: LiveServer, channel: str) -> dict:
    return json.loads(server.cli("mirror", "list", channel, "--json"))[0]


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {DEADLINE} s"
        time.sleep(0.2)


def cached(server: LiveServer) -> set[str]:
    rows = server.query("SELECT filename FROM mirror_files WHERE blob_sha256 IS NOT NULL")
    return {row[0] for row in rows}


def test_an_active_mirror_caches_its_list_alone_and_installs_with_the_upstream_gone(
    server, fake_pypi, dists, client_env, tmp_path
):
    for path in dists.build("synced", "1.0"):
        fake_pypi.add(path)
    wanted = tmp_path / "sync.txt"
    wanted.write_text("# what CI installs\nsynced\n")
    fake_pypi.log.clear()

    server.cli("mirror", "create", "active", "--type", "pypi", "--source", fake_pypi.index_url,
               "--mode", "active", "--sync", str(wanted), "--every", PERIOD)  # fmt: skip

    wait_for(lambda: "synced-1.0-py3-none-any.whl" in cached(server), "first sync")
    assert listing(server, "active")["sync"] == ["synced"]
    assert listing(server, "active")["sync_every"] == 3
    # Two workers run the schedule; the lease let one of them fetch each file, once.
    assert fake_pypi.log.count("*synced-1.0-py3-none-any.whl", server="files") == 1

    for path in dists.build("synced", "2.0"):
        fake_pypi.add(path)
    wait_for(lambda: "synced-2.0-py3-none-any.whl" in cached(server), "sync of the new release")
    assert listing(server, "active")["sync_result"].endswith("files cached, 0 problems")

    fake_pypi.stop()
    try:
        installed = pip_install(client_env, tmp_path / "site",
                                f"{server.url}/api/repo/active/simple/", "synced")  # fmt: skip
    finally:
        fake_pypi.start()
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert [p.name for p in (tmp_path / "site").glob("*.dist-info")] == ["synced-2.0.dist-info"]


def test_repo_mirror_sync_runs_it_now_and_says_what_it_did(server, fake_pypi, dists, tmp_path):
    for path in dists.build("onrequest", "1.0"):
        fake_pypi.add(path)
    wanted = tmp_path / "sync.txt"
    wanted.write_text("onrequest\nnot-upstream\n")
    server.cli("mirror", "create", "now", "--type", "pypi", "--source", fake_pypi.index_url,
               "--mode", "active", "--sync", str(wanted), "--every", "30d")  # fmt: skip
    # The schedule runs it at once too (a new mirror is due); wait for that one to finish.
    wait_for(lambda: listing(server, "now")["last_sync"] is not None, "first sync")

    result = run([tool("repo"), "--data-dir", str(server.data_dir), "mirror", "sync", "now"],
                 server.env, timeout=120)  # fmt: skip

    assert result.returncode == 1, result.stdout + result.stderr
    assert "onrequest-1.0-py3-none-any.whl: already cached" in result.stdout
    assert "not-upstream" in result.stdout
    assert result.stdout.strip().endswith("0 files cached, 1 problems")
    assert listing(server, "now")["sync_result"] == "0 files cached, 1 problems"
