"""Installing with real pip and uv from a live server: every URL form, every kind of token,
dependencies, yanking, PEP 658 metadata, and what the index pages say to a real client."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from types import SimpleNamespace

import pytest
from packaging.utils import parse_sdist_filename, parse_wheel_filename
from pypi_simple import PyPISimple

from repo.db import now

from .live import run, tool, twine_upload

JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture(scope="module")
def channels(live_server, dists, tmp_path_factory):
    """alice owns the private `dev` and the public `pub`; bob owns `bobs`. `dev` holds
    demo-pkg (which depends on dep-b), dep-b, and yanky 1.0 and 2.0 with 2.0 yanked."""
    s = live_server
    s.cli("user", "create", "alice", "--password", "alice-password")
    s.cli("user", "create", "bob", "--password", "bob-password")
    s.cli("channel", "create", "dev", "--owner", "alice")
    s.cli("channel", "create", "pub", "--owner", "alice", "--public")
    s.cli("channel", "create", "bobs", "--owner", "bob")
    user = s.cli("token", "create", "alice")
    home = tmp_path_factory.mktemp("uploader")
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"}
    uploads = {
        "dev": [
            *dists.build("Demo.Pkg", "1.0", dependencies=("dep_b>=1",), requires_python=">=3.8"),
            *dists.build("dep-b", "1.0"),
            *dists.build("yanky", "1.0"),
            *dists.build("yanky", "2.0"),
        ],
        "pub": dists.build("pubpkg", "0.1"),
    }
    for channel, paths in uploads.items():
        result = twine_upload(f"{s.url}/api/repo/{channel}", paths, env, user, "x-auth-token")
        assert result.returncode == 0, result.stdout + result.stderr
    s.cli("yank", "dev", "yanky-2.0-py3-none-any.whl", "--reason", "broken build")
    s.cli("yank", "dev", "yanky-2.0.tar.gz", "--reason", "broken build")
    revoked = s.cli("token", "create", "alice", "--label", "revoke-me")
    tokens = json.loads(s.cli("token", "list", "alice", "--json"))
    s.cli("token", "revoke", str(next(t["id"] for t in tokens if t["label"] == "revoke-me")))
    return SimpleNamespace(
        user=user,
        read=s.cli("token", "create", "alice", "--channel", "dev", "--scope", "read"),
        bob=s.cli("token", "create", "bob"),
        revoked=revoked,
        expired=s.cli("token", "create", "alice", "--expires-in", "1s"),
    )


def index_urls(server, channel: str, token: str) -> dict[str, str]:
    return {
        "basic": f"http://{token}:x-auth-token@{server.host}/api/repo/{channel}/simple",
        "password": f"http://__token__:{token}@{server.host}/api/repo/{channel}/simple",
        "repo-t": f"{server.url}/api/repo/t/{token}/{channel}/simple",
        "t-repo": f"{server.url}/api/t/{token}/repo/{channel}/simple",
    }


def pip_install(env, target, index_url, *requirements):
    return run([tool("python"), "-m", "pip", "install", "--no-cache-dir", "--target",
                str(target), "--index-url", index_url, *requirements], env)  # fmt: skip


def uv_install(env, target, index_url, *requirements):
    return run([tool("uv"), "pip", "install", "--no-cache", "--python", tool("python"),
                "--target", str(target), "--index-url", index_url, *requirements], env)  # fmt: skip


INSTALLERS = {"pip": pip_install, "uv": uv_install}


def installed(target) -> set[str]:
    return {p.name.split("-")[0].lower() for p in target.glob("*.dist-info")}


@pytest.mark.parametrize("form", ["basic", "password", "repo-t", "t-repo"])
@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_install_with_dependency_from_the_same_channel(
    live_server, channels, client_env, tmp_path, installer, form
):
    url = index_urls(live_server, "dev", channels.read)[form]
    result = INSTALLERS[installer](client_env, tmp_path / "site", url, "Demo.Pkg")
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed(tmp_path / "site") == {"demo_pkg", "dep_b"}


@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_yanked_file_is_not_chosen(live_server, channels, client_env, tmp_path, installer):
    url = index_urls(live_server, "dev", channels.user)["repo-t"]
    result = INSTALLERS[installer](client_env, tmp_path / "site", url, "yanky")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [p.name for p in (tmp_path / "site").glob("yanky-*.dist-info")] == [
        "yanky-1.0.dist-info"
    ]


@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_yanked_file_is_installed_when_pinned_exactly(live_server, channels, client_env,
                                                       tmp_path, installer):  # fmt: skip
    # PEP 592: a yanked release is still chosen for `==` (pip also warns with the reason).
    url = index_urls(live_server, "dev", channels.user)["repo-t"]

    result = INSTALLERS[installer](client_env, tmp_path / "site", url, "yanky==2.0")

    assert result.returncode == 0, result.stdout + result.stderr
    assert [p.name for p in (tmp_path / "site").glob("yanky-*.dist-info")] == [
        "yanky-2.0.dist-info"
    ]
    if installer == "pip":
        assert "broken build" in result.stdout + result.stderr


def _wait_for_expiry(server) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        # The server's clock is ours, and its timestamps are repo.db.now()'s.
        if server.query("SELECT 1 FROM tokens WHERE expires <= ?", now()):
            return
        time.sleep(0.2)


@pytest.mark.parametrize("which", ["wrong", "revoked", "expired"])
@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_bad_token_cannot_install(live_server, channels, client_env, tmp_path, installer, which):
    if which == "expired":
        _wait_for_expiry(live_server)
    token = {"wrong": "rp-" + "B" * 49, "revoked": channels.revoked, "expired": channels.expired}
    url = index_urls(live_server, "dev", token[which])["basic"]
    result = INSTALLERS[installer](client_env, tmp_path / "site", url, "Demo.Pkg")
    assert result.returncode != 0
    assert "401" in result.stdout + result.stderr
    assert not (tmp_path / "site").exists() or installed(tmp_path / "site") == set()


@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_anonymous_install_from_public_channel(
    live_server, channels, client_env, tmp_path, installer
):
    url = f"{live_server.url}/api/repo/pub/simple"
    result = INSTALLERS[installer](client_env, tmp_path / "site", url, "pubpkg")
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed(tmp_path / "site") == {"pubpkg"}


@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_anonymous_install_from_private_channel_fails(
    live_server, channels, client_env, tmp_path, installer
):
    url = f"{live_server.url}/api/repo/dev/simple"
    result = INSTALLERS[installer](client_env, tmp_path / "site", url, "Demo.Pkg")
    assert result.returncode != 0
    assert status_of(f"{url}/demo-pkg/") == 401


def status_of(url: str, **headers: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10):
            return 200
    except urllib.error.HTTPError as error:
        return error.code


def test_other_users_private_channel_is_404(live_server, channels, client_env, tmp_path):
    url = index_urls(live_server, "dev", channels.bob)["repo-t"]
    result = pip_install(client_env, tmp_path / "site", url, "Demo.Pkg")
    assert result.returncode != 0
    assert status_of(f"{url}/demo-pkg/") == 404
    assert status_of(f"{live_server.url}/api/repo/t/{channels.bob}/nope/simple/") == 404


def test_pip_download_uses_core_metadata_file(live_server, channels, client_env, tmp_path):
    url = index_urls(live_server, "dev", channels.read)["t-repo"]
    result = run([tool("python"), "-m", "pip", "download", "--no-cache-dir", "--dest",
                  str(tmp_path), "--index-url", url, "Demo.Pkg"], client_env)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in tmp_path.glob("*.whl")) == [
        "demo_pkg-1.0-py3-none-any.whl",
        "dep_b-1.0-py3-none-any.whl",
    ]
    fetched = [line for line in live_server.log().splitlines() if ".whl.metadata HTTP" in line]
    assert any("pip/" in line and "demo_pkg-1.0-py3-none-any.whl.metadata" in line
               for line in fetched)  # fmt: skip


@pytest.mark.parametrize("accept", [JSON, "text/html"])
def test_pages_validate_with_pypi_simple(live_server, channels, accept):
    endpoint = f"{live_server.url}/api/repo/dev/simple/"
    with PyPISimple(endpoint, auth=(channels.read, "x-auth-token"), accept=accept) as client:
        index = client.get_index_page()
        assert sorted(index.projects) == ["Demo.Pkg", "dep-b", "yanky"]
        page = client.get_project_page("yanky")
    by_name = {p.filename: p for p in page.packages}
    assert set(by_name) == {
        "yanky-1.0-py3-none-any.whl", "yanky-1.0.tar.gz",
        "yanky-2.0-py3-none-any.whl", "yanky-2.0.tar.gz",
    }  # fmt: skip
    for package in page.packages:
        assert len(package.digests["sha256"]) == 64
        if package.filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(package.filename)
            assert package.has_metadata is True
        else:
            name, version = parse_sdist_filename(package.filename)
            assert not package.has_metadata
        assert (name, str(version)) == ("yanky", package.version)
        assert package.is_yanked == (package.version == "2.0")
        if package.is_yanked:
            assert package.yanked_reason == "broken build"
        if accept == JSON:
            assert package.size > 0 and package.upload_time is not None


def test_index_pages_revalidate_with_etag(live_server, channels):
    url = f"{live_server.url}/api/repo/t/{channels.read}/dev/simple/dep-b/"
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": JSON})) as first:
        etag = first.headers["ETag"]
        assert first.headers["Cache-Control"] == "max-age=0, must-revalidate, private"
        assert "Accept" in first.headers["Vary"]
        assert first.headers["Content-Type"] == JSON
    assert status_of(url, Accept=JSON, **{"If-None-Match": etag}) == 304
    assert status_of(url, Accept="text/html", **{"If-None-Match": etag}) == 200


def test_files_serve_ranges_and_immutable_caching(live_server, channels):
    page = json.load(urllib.request.urlopen(urllib.request.Request(
        f"{live_server.url}/api/repo/t/{channels.read}/dev/simple/dep-b/",
        headers={"Accept": JSON})))  # fmt: skip
    wheel = next(f for f in page["files"] if f["filename"].endswith(".whl"))
    url = urllib.parse.urljoin(
        f"{live_server.url}/api/repo/t/{channels.read}/dev/simple/dep-b/", wheel["url"]
    )
    request = urllib.request.Request(url, headers={"Range": "bytes=0-9"})
    with urllib.request.urlopen(request) as response:
        assert response.status == 206
        assert response.read() == open_whole(url)[:10]
        assert response.headers["ETag"] == f'"{wheel["hashes"]["sha256"]}"'
        assert "immutable" in response.headers["Cache-Control"]
        assert response.headers.get("Content-Encoding") is None


def open_whole(url: str) -> bytes:
    with urllib.request.urlopen(url) as response:
        return response.read()


def test_non_normalized_project_redirects_under_the_token_prefix(live_server, channels):
    url = f"{live_server.url}/api/t/{channels.read}/repo/dev/simple/Demo.Pkg/"
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": JSON})) as page:
        assert page.url == f"{live_server.url}/api/t/{channels.read}/repo/dev/simple/demo-pkg/"
        assert json.load(page)["name"] == "demo-pkg"


def test_path_tokens_never_reach_the_log(live_server, channels):
    log = live_server.log()
    assert "/t/<redacted>/" in log
    for token in (channels.user, channels.read, channels.bob, channels.revoked, channels.expired):
        assert token not in log
