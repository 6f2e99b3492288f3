"""The CRAN index cache: a contrib directory without packages costs nothing on disk, made-up
trees cannot grow it, and `repo gc` removes what no request will read again (security review
finding 4)."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

import pytest

from repo import maintenance
from repo.cran import cache

from .builders import r_form, send, token_auth

MADE_UP = [
    "bin/windows/contrib/4.7/PACKAGES",
    "bin/windows/contrib/9.99/PACKAGES.rds",
    "bin/macosx/big-sur-arm64/contrib/4.5/PACKAGES.gz",
    "bin/linux/x1234-y5678/contrib/4.4/PACKAGES.gz",
    "src/contrib/PACKAGES",
    "src/contrib/Meta/archive.rds",
]


@pytest.fixture
def public(repo):
    """A public channel 'pub' and the Basic header of a write token for it."""
    made = repo.owner_with_channel("alice", "pub", public=True)
    return token_auth(repo.token(made.user_id, made.channel_id, "write"))


def cache_entries(app) -> list[Path]:
    root = cache.root(app.config["DATA_DIR"])
    return sorted(root.rglob("*")) if root.exists() else []


@pytest.mark.parametrize("path", MADE_UP)
def test_an_empty_tree_answers_an_empty_index_and_writes_nothing(app, client, public, path):
    response = send(client, "GET", f"/api/repo/pub/cran/{path}")

    assert response.status_code == 200
    data = response.get_data()
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    if path.endswith("PACKAGES") or path.endswith(".gz"):
        assert data == b""
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert cache_entries(app) == []


def test_the_empty_index_has_a_strong_etag_and_answers_304(client, public):
    url = "/api/repo/pub/cran/bin/windows/contrib/4.4/PACKAGES.rds"
    etag = send(client, "GET", url).headers["ETag"]

    again = send(client, "GET", url, headers={"If-None-Match": etag})

    assert not etag.startswith("W/")
    assert again.status_code == 304


@pytest.mark.parametrize(
    "path",
    [
        "bin/windows/contrib/4." + "9" * 240 + "/PACKAGES",
        "bin/linux/" + "x" * 400 + "-y/contrib/4.4/PACKAGES.gz",
        "bin/windows/contrib/4.4/" + "a" * 300,
    ],
)
def test_overlong_names_are_404_not_500(app, client, public, path):
    response = send(client, "GET", f"/api/repo/pub/cran/{path}")

    assert response.status_code == 404
    assert cache_entries(app) == []


def test_an_index_with_packages_is_cached_private(app, client, public):
    assert send(client, "POST", "/api/repo/pub", data=r_form(), headers=public).status_code == 200

    response = send(client, "GET", "/api/repo/pub/cran/src/contrib/PACKAGES")

    assert response.status_code == 200
    assert b"Package: abc\n" in response.get_data()
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert cache_entries(app) != []


def age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_gc_removes_old_revisions_and_gone_channels_but_keeps_the_current(app, client, public,
                                                                          repo):  # fmt: skip
    data_dir = Path(app.config["DATA_DIR"])
    assert send(client, "POST", "/api/repo/pub", data=r_form(), headers=public).status_code == 200
    send(client, "GET", "/api/repo/pub/cran/src/contrib/PACKAGES")
    root = cache.root(data_dir)
    (current,) = (root / "1").iterdir()
    old = root / "1" / "r0" / "src" / "contrib"
    old.mkdir(parents=True)
    gone = root / "99" / "r3"
    gone.mkdir(parents=True)
    crashed = root / "1" / ".build-abc"
    crashed.mkdir()
    for path in (old.parents[1], gone, crashed, current):
        age(path, 7200)
    db, store = repo.db, app.extensions["blobs"]

    listed = maintenance.gc(db, store, data_dir, grace=3600, dry_run=True)
    removed = maintenance.gc(db, store, data_dir, grace=3600)

    assert listed == removed == sorted([old.parents[1], gone, crashed])
    assert sorted(p.name for p in root.iterdir()) == ["1"]
    assert list((root / "1").iterdir()) == [current]
    assert send(client, "GET", "/api/repo/pub/cran/src/contrib/PACKAGES").status_code == 200


def test_gc_spares_a_young_old_revision(app, client, public, repo):
    data_dir = Path(app.config["DATA_DIR"])
    young = cache.root(data_dir) / "1" / "r0"
    young.mkdir(parents=True)

    removed = maintenance.gc(repo.db, app.extensions["blobs"], data_dir, grace=3600)

    assert removed == []
    assert young.is_dir()
