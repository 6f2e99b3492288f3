"""Dated snapshots through a live gunicorn with real pip, uv and R (issue 14).

A private channel gets 1.0 of a Python project and of an R package, then 2.0 of both; 2.0 of
the Python project is yanked and the R 2.0 deleted. Installs through the snapshot URL of the
instant after each step, under every URL form, get exactly the versions of that instant (pip
and uv skip a yanked release, and take it when pinned). A mirror channel's snapshot leaves out
an upstream release newer than the instant and includes an older one never cached before, on
the Python side by PEP 700 upload-time and on the R side by the upstream index the mirror saw
then, whose version upstream has since moved to Archive/.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from .live import LiveServer, pip_install, twine_upload, uv_install
from .test_r import curl_upload, install_and_call
from .upstreams import FakeCRAN

JSON = "application/vnd.pypi.simple.v1+json"
PROJECT = "snapdemo"
R_VERSIONS = {"1.0": "abc_2.0.tar.gz", "2.0": "abc_2.1.tar.gz"}  # the fixture package's builds
INSTALLERS = {"pip": pip_install, "uv": uv_install}
VERSION_CALL = 'as.character(utils::packageVersion("abc", lib.loc = lib))'


def instant() -> str:
    """Now as an RFC 3339 instant; the events before it were acknowledged before it."""
    time.sleep(0.01)
    moment = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    time.sleep(0.01)
    return moment


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("snapshots") / "data")
    live.cli("user", "create", "alice", "--password", "alice-password")
    live.cli("channel", "create", "snap", "--owner", "alice")
    yield live
    live.stop()


@pytest.fixture(scope="module")
def tokens(server):
    return {
        "owner": server.cli("token", "create", "alice", "--label", "owner"),
        "read": server.cli("token", "create", "alice", "--channel", "snap", "--scope", "read"),
    }


def installed_version(target: Path, name: str) -> str | None:
    found = [p.name for p in target.glob(f"{name}-*.dist-info")]
    assert len(found) <= 1, found
    return found[0].removesuffix(".dist-info").split("-")[1] if found else None


def api_delete(server: LiveServer, token: str, channel: str, filename: str) -> None:
    request = urllib.request.Request(f"{server.url}/api/channels/{channel}/files/{filename}",
                                     method="DELETE", headers={"X-Auth": token})  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 204


@pytest.fixture(scope="module")
def timeline(server, tokens, dists, r_built, tmp_path_factory):
    """The instants after each step of the private channel's history."""
    env = {"PATH": "/usr/bin:/bin"}
    twine_env = {**env, "HOME": str(tmp_path_factory.mktemp("twine-home"))}
    upload = f"{server.url}/api/repo/snap"
    moments = {"before": instant()}
    for version in ("1.0", "2.0"):
        sent = twine_upload(upload, dists.build(PROJECT, version), twine_env, tokens["owner"],
                            "x-auth-token")  # fmt: skip
        assert sent.returncode == 0, sent.stdout + sent.stderr
        status, body = curl_upload(upload, r_built[R_VERSIONS[version]], "cran_source_package",
                                   headers={"X-Auth": tokens["owner"]})  # fmt: skip
        assert status == 200, body
        moments[version] = instant()
    for dist in dists.build(PROJECT, "2.0"):
        server.cli("yank", "snap", dist.name, "--reason", "broken build")
    moments["yanked"] = instant()
    api_delete(server, tokens["owner"], "snap", R_VERSIONS["2.0"])
    moments["deleted"] = instant()
    return moments


def index_urls(server: LiveServer, token: str, moment: str) -> dict[str, str]:
    """The snapshot's simple index under every URL form."""
    return {
        "basic": f"http://{token}:x-auth-token@{server.host}/api/repo/snap/snapshot/{moment}/simple/",
        "repo-t": f"{server.url}/api/repo/t/{token}/snap/snapshot/{moment}/simple/",
        "t-repo": f"{server.url}/api/t/{token}/repo/snap/snapshot/{moment}/simple/",
    }  # fmt: skip


# (instant, requirement) -> the version installed then.
PYTHON_EXPECTED = {
    ("1.0", PROJECT): "1.0",
    ("2.0", PROJECT): "2.0",
    ("yanked", PROJECT): "1.0",  # 2.0 is yanked at that instant: skipped...
    ("yanked", f"{PROJECT}==2.0"): "2.0",  # ...unless pinned (PEP 592)
    ("deleted", PROJECT): "1.0",
}


@pytest.mark.parametrize("installer", INSTALLERS)
@pytest.mark.parametrize("form", ["basic", "repo-t", "t-repo"])
def test_pip_and_uv_install_what_the_channel_held_at_each_instant(
    server, tokens, timeline, tmp_path, installer, form, client_env
):
    for number, ((step, requirement), version) in enumerate(PYTHON_EXPECTED.items()):
        target = tmp_path / f"target{number}"
        url = index_urls(server, tokens["read"], timeline[step])[form]
        result = INSTALLERS[installer](client_env, target, url, requirement)
        assert result.returncode == 0, (step, result.stdout + result.stderr)
        assert installed_version(target, PROJECT) == version, (step, requirement)
    # Before the first upload the project did not exist.
    url = index_urls(server, tokens["read"], timeline["before"])[form]
    result = INSTALLERS[installer](client_env, tmp_path / "before", url, PROJECT)
    assert result.returncode != 0


def project_page(server: LiveServer, token: str, moment: str, project: str) -> dict:
    request = urllib.request.Request(index_urls(server, token, moment)["repo-t"] + f"{project}/",
                                     headers={"Accept": JSON})  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def test_a_snapshot_page_shows_the_yank_state_of_its_instant(server, tokens, timeline):
    yanked = {}
    for step in ("2.0", "yanked"):
        page = project_page(server, tokens["read"], timeline[step], PROJECT)
        # The wheel's and the sdist's (version, yank state).
        yanked[step] = sorted(
            (f["filename"].removesuffix(".tar.gz").split("-")[1], f["yanked"])
            for f in page["files"]
        )
    assert yanked["2.0"] == [("1.0", False)] * 2 + [("2.0", False)] * 2
    assert yanked["yanked"] == [("1.0", False)] * 2 + [("2.0", "broken build")] * 2


# The instant -> the R version install.packages() takes then.
R_EXPECTED = {"1.0": "2.0", "2.0": "2.1", "yanked": "2.1", "deleted": "2.0"}


@pytest.mark.parametrize("form", ["basic", "repo-t", "t-repo"])
def test_r_installs_what_the_channel_held_at_each_instant(server, tokens, timeline, tmp_path,
                                                          form):  # fmt: skip
    for step, version in R_EXPECTED.items():
        index = index_urls(server, tokens["read"], timeline[step])[form]
        repos = index.replace("/simple/", "/cran")
        status, output = r_install(repos, tmp_path / step)
        assert status == 0, (step, output)
        assert f"RESULT: {version}" in output, (step, output)


def r_install(repos: str, home: Path) -> tuple[int, str]:
    """install.packages("abc") from `repos` into a new library under `home`; its version."""
    home.mkdir(parents=True)
    return install_and_call(repos, "abc", VERSION_CALL, home)


def fetch(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers={"Accept": JSON})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_a_future_snapshot_is_400_and_an_upload_to_a_snapshot_is_405(
    server, tokens, timeline, dists, tmp_path
):
    status, _, body = fetch(
        f"{server.url}/api/repo/t/{tokens['read']}/snap/snapshot/2999-01-01/simple/"
    )
    assert status == 400 and b"is in the future" in body
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    url = f"{server.url}/api/repo/snap/snapshot/{timeline['2.0']}"
    sent = twine_upload(url, dists.build(PROJECT, "3.0"), env, tokens["owner"], "x-auth-token")
    assert sent.returncode != 0
    assert "405" in sent.stdout + sent.stderr and "read-only" in sent.stdout + sent.stderr


def test_an_old_snapshot_is_immutable(server, tokens, timeline):
    status, headers, _ = fetch(
        f"{server.url}/api/repo/t/{tokens['read']}/snap/snapshot/2026-01-01/simple/"
    )
    assert status == 200
    assert headers["Cache-Control"] == "private, max-age=31536000, immutable"
    assert not headers["ETag"].startswith("W/")


# --- mirror channels ---------------------------------------------------------------------


def test_a_pypi_mirror_snapshot_goes_by_upstream_upload_time(server, fake_pypi, dists, tmp_path,
                                                             client_env):  # fmt: skip
    fake_pypi.reset()
    fake_pypi.start()
    old = datetime(2026, 3, 1, tzinfo=UTC)
    for dist in dists.build("mirrorold", "1.0"):
        fake_pypi.add(dist, upload_time=old)
    for dist in dists.build("mirrornew", "1.0"):
        fake_pypi.add(dist, upload_time=old)
    for dist in dists.build("mirrornew", "2.0"):
        fake_pypi.add(dist)  # uploaded now
    server.cli("channel", "create", "pymirror", "--owner", "alice", "--public")
    server.cli("mirror", "create", "pymirror", "--type", "pypi", "--source", fake_pypi.index_url)
    snapshot = f"{server.url}/api/repo/pymirror/snapshot/2026-06-30/simple/"
    # The live index offers the new release; the snapshot does not.
    live = pip_install(client_env, tmp_path / "live", f"{server.url}/api/repo/pymirror/simple/",
                       "mirrornew")  # fmt: skip
    assert live.returncode == 0, live.stdout + live.stderr
    assert installed_version(tmp_path / "live", "mirrornew") == "2.0"
    fake_pypi.log.clear()
    for installer in INSTALLERS:
        result = INSTALLERS[installer](client_env, tmp_path / installer, snapshot, "mirrornew",
                                       "mirrorold")  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert installed_version(tmp_path / installer, "mirrornew") == "1.0", installer
        # Never asked for before: fetched on demand from upstream for the snapshot.
        assert installed_version(tmp_path / installer, "mirrorold") == "1.0", installer
    assert fake_pypi.log.count("/simple/mirrorold/*") >= 1
    assert fake_pypi.log.count("*mirrorold-1.0*", server="files") >= 1
    # Rendered from the upstream's fresh answer, the page of an instant past never changes.
    status, headers, _ = fetch(f"{snapshot}mirrornew/")
    assert status == 200
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"


def test_a_cran_mirror_snapshot_lists_the_upstream_index_it_saw_then(server, r_built, tmp_path):
    upstream = FakeCRAN(tmp_path / "cran")
    try:
        upstream.add(r_built["abc_2.0.tar.gz"])
        server.cli("channel", "create", "rmirror", "--owner", "alice", "--public")
        server.cli("mirror", "create", "rmirror", "--type", "cran", "--source", upstream.url,
                   "--ttl", "1s")  # fmt: skip
        live = f"{server.url}/api/repo/rmirror/cran"
        assert fetch(f"{live}/src/contrib/PACKAGES")[2].count(b"Version: 2.0") == 1
        seen = instant()
        upstream.add(r_built["abc_2.1.tar.gz"])  # 2.0 moves to Archive/abc/
        time.sleep(1.5)
        assert b"Version: 2.1" in fetch(f"{live}/src/contrib/PACKAGES")[2]
        upstream.log.clear()

        status, output = r_install(f"{server.url}/api/repo/rmirror/snapshot/{seen}/cran",
                                   tmp_path / "r")  # fmt: skip
        assert status == 0, output
        assert "RESULT: 2.0" in output, output
        # 2.0 was never fetched before: now it was, from where upstream keeps it now.
        assert upstream.log.count("/src/contrib/Archive/abc/abc_2.0.tar.gz") == 1
        status, output = r_install(live, tmp_path / "now")
        assert "RESULT: 2.1" in output, output
        # What upstream listed at an instant long past is history: immutable. A recent
        # instant's index revalidates, as a change could still be committed with its time.
        old = fetch(f"{server.url}/api/repo/rmirror/snapshot/2026-01-01/cran/src/contrib/PACKAGES")
        assert old[1]["Cache-Control"] == "public, max-age=31536000, immutable"
        recent = fetch(f"{server.url}/api/repo/rmirror/snapshot/{seen}/cran/src/contrib/PACKAGES")
        assert recent[1]["Cache-Control"] == "private, no-cache"
    finally:
        upstream.stop()
