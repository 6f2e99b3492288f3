"""Uploading with real twine and uv publish to a live server: tokens of every kind, re-runs,
conflicts, and refusals that leave nothing behind."""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.parse
import urllib.request
from types import SimpleNamespace

import pytest

from repo.db import now

from .live import LiveServer, run, tool, twine_upload


@pytest.fixture(scope="module")
def team(live_server):
    s = live_server
    s.cli("user", "create", "alice", "--password", "alice-password")
    s.cli("user", "create", "bob", "--password", "bob-password")
    s.cli("channel", "create", "dev", "--owner", "alice")
    s.cli("channel", "create", "bobs", "--owner", "bob")
    revoked = s.cli("token", "create", "alice", "--label", "to-revoke")
    token_id = next(t["id"] for t in json.loads(s.cli("token", "list", "alice", "--json"))
                    if t["label"] == "to-revoke")  # fmt: skip
    s.cli("token", "revoke", str(token_id))
    return SimpleNamespace(
        user=s.cli("token", "create", "alice", "--label", "ci"),
        write=s.cli("token", "create", "alice", "--channel", "dev", "--scope", "write"),
        read=s.cli("token", "create", "alice", "--channel", "dev", "--scope", "read"),
        bob=s.cli("token", "create", "bob"),
        revoked=revoked,
        expired=s.cli("token", "create", "alice", "--expires-in", "1s"),
    )


def twine(env, url, paths, user, password):
    """twine_upload with the arguments in this module's order."""
    return twine_upload(url, paths, env, user, password)


def said(result) -> str:
    """What a client printed, on one line (twine wraps its messages to the terminal)."""
    return " ".join((result.stdout + result.stderr).split())


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def project_json(server, channel, project, token):
    request = urllib.request.Request(
        f"{server.url}/api/repo/t/{token}/{channel}/simple/{project}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def assert_nothing_left(server, rows_before, blobs_before):
    assert server.query("SELECT count(*) FROM files")[0][0] == rows_before
    assert server.blobs() == blobs_before
    assert server.pending() == []


def test_user_token_uploads_wheel_and_sdist(live_server, team, dists, client_env):
    paths = dists.build("Demo.Pkg", "1.0", requires_python=">=3.8")
    result = twine(client_env, f"{live_server.url}/api/repo/dev", paths, team.user, "x-auth-token")
    assert result.returncode == 0, result.stdout + result.stderr
    page = project_json(live_server, "dev", "demo-pkg", team.user)
    listed = {f["filename"]: f for f in page["files"]}
    assert set(listed) == {p.name for p in paths}
    for path in paths:
        assert listed[path.name]["hashes"]["sha256"] == sha256(path)
        assert listed[path.name]["requires-python"] == ">=3.8"
        page_url = f"{live_server.url}/api/repo/t/{team.user}/dev/simple/demo-pkg/"
        url = urllib.parse.urljoin(page_url, listed[path.name]["url"])
        with urllib.request.urlopen(url, timeout=10) as response:
            assert hashlib.sha256(response.read()).hexdigest() == sha256(path)


def test_reupload_identical_file_is_ok(live_server, team, dists, client_env):
    paths = dists.build("Demo.Pkg", "1.0", requires_python=">=3.8")
    twine(client_env, f"{live_server.url}/api/repo/dev", paths, team.user, "x-auth-token")
    rows, blobs = live_server.query("SELECT count(*) FROM files")[0][0], live_server.blobs()
    result = twine(client_env, f"{live_server.url}/api/repo/dev", paths, team.user, "x-auth-token")
    assert result.returncode == 0, result.stdout + result.stderr
    assert_nothing_left(live_server, rows, blobs)


def test_write_channel_token_uploads_as_password(live_server, team, dists, client_env):
    paths = dists.build("dep-b", "1.0")
    result = twine(client_env, f"{live_server.url}/api/repo/dev/", paths, "__token__", team.write)
    assert result.returncode == 0, result.stdout + result.stderr
    names = [f["filename"] for f in project_json(live_server, "dev", "dep-b", team.user)["files"]]
    assert sorted(names) == sorted(p.name for p in paths)


def test_same_filename_with_other_content_is_409(live_server, team, dists, client_env):
    twine(client_env, f"{live_server.url}/api/repo/dev", dists.build("Demo.Pkg", "1.0",
          requires_python=">=3.8"), team.user, "x-auth-token")  # fmt: skip
    rows, blobs = live_server.query("SELECT count(*) FROM files")[0][0], live_server.blobs()
    other = dists.build("Demo.Pkg", "1.0", requires_python=">=3.8", variant="other")
    result = twine(client_env, f"{live_server.url}/api/repo/dev", other[:1], team.user,
                   "x-auth-token")  # fmt: skip
    assert result.returncode == 1
    assert "409" in said(result) and "File already exists" in said(result), said(result)
    assert_nothing_left(live_server, rows, blobs)


def test_read_token_cannot_upload(live_server, team, dists, client_env):
    rows, blobs = live_server.query("SELECT count(*) FROM files")[0][0], live_server.blobs()
    paths = dists.build("readonly-try", "1.0")
    result = twine(client_env, f"{live_server.url}/api/repo/dev", paths, team.read, "x-auth-token")
    assert result.returncode == 1
    assert "403" in said(result) and "may not upload to channel 'dev'" in said(result)
    assert_nothing_left(live_server, rows, blobs)


@pytest.mark.parametrize("which", ["wrong", "mistyped", "revoked", "expired"])
def test_bad_token_gets_401_on_upload(live_server, team, dists, client_env, which):
    token = {
        "wrong": "rp-" + "A" * 43 + team.user[-6:],
        "mistyped": team.user[:-1] + ("x" if team.user[-1] != "x" else "y"),
        "revoked": team.revoked,
        "expired": team.expired,
    }[which]
    if which == "expired":
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not _expired(live_server):
            time.sleep(0.2)
    rows, blobs = live_server.query("SELECT count(*) FROM files")[0][0], live_server.blobs()
    paths = dists.build("badtoken-try", "1.0")
    result = twine(client_env, f"{live_server.url}/api/repo/dev", paths, token, "x-auth-token")
    assert result.returncode == 1
    assert "401" in said(result), said(result)
    assert token not in said(result)
    assert_nothing_left(live_server, rows, blobs)


def _expired(server) -> bool:
    return bool(server.query("SELECT 1 FROM tokens WHERE expires <= ?", now()))


def test_other_users_private_channel_is_404(live_server, team, dists, client_env):
    paths = dists.build("intruder", "1.0")
    result = twine(client_env, f"{live_server.url}/api/repo/bobs", paths, team.user,
                   "x-auth-token")  # fmt: skip
    assert result.returncode == 1
    assert "404" in said(result) and "Channel 'bobs' not found" in said(result)


def test_long_readme_uploads(live_server, team, dists, client_env):
    readme = "# Big\n\n" + ("All work and no play. " * 40_000)  # about 880 kB
    paths = dists.build("big-readme", "1.0", readme=readme)
    result = twine(client_env, f"{live_server.url}/api/repo/dev", paths, team.user, "x-auth-token")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_file_over_the_limit_is_413_through_gunicorn_and_twine(dists, client_env, tmp_path):
    server = LiveServer(tmp_path / "data", REPO_MAX_UPLOAD_MB="1")
    try:
        server.cli("user", "create", "alice", "--password", "alice-password")
        server.cli("channel", "create", "dev", "--owner", "alice")
        token = server.cli("token", "create", "alice")
        readme = os.urandom(1024 * 1024).hex()  # 2 MiB that compress to about 1.1 MiB
        wheel = next(p for p in dists.build("too-big", "1.0", readme=readme) if p.suffix == ".whl")
        assert wheel.stat().st_size > 1024 * 1024

        result = twine(client_env, f"{server.url}/api/repo/dev", [wheel], token, "x-auth-token")

        assert result.returncode == 1
        assert "413" in said(result) and "File too large: limit is 1 MB" in said(result)
        assert_nothing_left(server, 0, set())
    finally:
        server.stop()


def test_uv_publish_uploads_and_reruns(live_server, team, dists, client_env):
    paths = dists.build("uv-published", "2.0")
    args = [tool("uv"), "publish", "--publish-url", f"{live_server.url}/api/repo/dev",
            "--username", "__token__", "--password", team.write, *map(str, paths)]  # fmt: skip
    first = run(args, client_env)
    assert first.returncode == 0, first.stdout + first.stderr
    again = run(args, client_env)
    assert again.returncode == 0, again.stdout + again.stderr
    names = {f["filename"] for f in project_json(live_server, "dev", "uv-published",
                                                  team.user)["files"]}  # fmt: skip
    assert names == {p.name for p in paths}


def test_uv_publish_shows_the_servers_message(live_server, team, dists, client_env):
    paths = dists.build("uv-readonly", "1.0")
    result = run([tool("uv"), "publish", "--publish-url", f"{live_server.url}/api/repo/dev",
                  "--username", "__token__", "--password", team.read, *map(str, paths)],
                 client_env)  # fmt: skip
    assert result.returncode != 0
    assert "may not upload to channel 'dev'" in said(result), said(result)


def test_tokens_never_reach_the_log(live_server, team):
    log = live_server.log()
    for token in (team.user, team.write, team.read, team.bob, team.revoked, team.expired):
        assert token not in log
