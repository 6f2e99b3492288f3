"""A mirror's size quota through a live gunicorn, FakePyPI and real pip (mirror.md R17): past
the quota the least recently downloaded wheel is evicted, and pip still installs it (fetched
again from upstream)."""

from __future__ import annotations

import secrets

import pytest

from .live import LiveServer, pip_install

CHANNEL = "quota"


@pytest.fixture(scope="module")
def wheels(fake_pypi, dists):
    """Two wheels upstream, each about 20 KB (a random readme does not compress away)."""
    return [
        fake_pypi.add(dists.build(name, "1.0", readme=secrets.token_hex(20_000))[0])
        for name in ("quota-one", "quota-two")
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_pypi, wheels):
    """A public channel mirroring FakePyPI with a quota of more than one wheel, less than two."""
    sizes = sorted(file.size for file in wheels)
    quota = (sizes[1] + sizes[0] // 2) // 1024
    assert sizes[1] <= quota * 1024 < sum(sizes)
    live = LiveServer(tmp_path_factory.mktemp("quota") / "data")
    live.cli("user", "create", "alice", "--password", "alice-password")
    live.cli("channel", "create", CHANNEL, "--owner", "alice", "--public")
    live.cli("mirror", "create", CHANNEL, "--type", "pypi", "--source", fake_pypi.index_url,
             "--quota", f"{quota}K")  # fmt: skip
    assert f"(quota {quota * 1024})" in live.cli("mirror", "list")
    yield live
    live.stop()


def cached(server: LiveServer, filename: str) -> bool:
    rows = server.query("SELECT blob_sha256 FROM mirror_files WHERE filename = ?", filename)
    return rows[0][0] is not None


def test_past_the_quota_pip_installs_the_evicted_wheel_again(
    server, fake_pypi, wheels, client_env, tmp_path
):
    one, two = wheels
    index = f"{server.url}/api/repo/{CHANNEL}/simple/"
    for n, project in enumerate(("quota-one", "quota-two")):
        result = pip_install(client_env, tmp_path / f"t{n}", index, project)
        assert result.returncode == 0, result.stderr

    assert [cached(server, one.filename), cached(server, two.filename)] == [False, True]
    assert one.sha256 not in server.blobs() and two.sha256 in server.blobs()

    again = pip_install(client_env, tmp_path / "again", index, "quota-one")

    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again" / "quota_one" / "__init__.py").exists()
    assert fake_pypi.log.count(one.path) == 2
    assert [cached(server, one.filename), cached(server, two.filename)] == [True, False]
