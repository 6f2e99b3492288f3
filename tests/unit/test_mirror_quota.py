"""A mirror's size quota (mirror.md R17: least recently downloaded cached files evicted, never
an upload's blob nor the file just cached, fetched again when asked for) and its minimum age
(R21: files uploaded too recently neither listed nor served), through the app, against the
local file server of test_mirror_fetch and rows made here."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from repo.db import transaction
from repo.errors import Invalid
from repo.mirror import settings
from repo.pypi.simple import V1_JSON

from .builders import WHEEL_NAME, send, token_auth, twine_form, wheel
from .test_mirror_fetch import listed, row_of, upstream, url_of  # noqa: F401 - a fixture
from .webui import text

SIZE = 1000
NOW = 1_800_000_000.0  # the app's clock: 2027-01-15T08:00:00Z
WEEK = 7 * 24 * 3600


def body(n: int) -> bytes:
    return bytes([n]) * SIZE


def name(n: int) -> str:
    return f"demo-1.{n}-py3-none-any.whl"


@pytest.fixture
def made(app, repo):
    yield repo.owner_with_channel("alice", "ch", public=True)
    if "upstream_client" in app.extensions:
        app.extensions["upstream_client"][1].close()


def mirror_of(app, repo, made, upstream, **options):  # noqa: F811 - the fixture's value
    created = settings.create(repo.db, made.channel_id, "pypi", upstream.url + "/simple/",
                              **options)  # fmt: skip
    app.config["CLOCK"] = lambda: NOW
    return created


def cached(repo, filename: str) -> bool:
    return row_of(repo.db, filename)["blob_sha256"] is not None


def blob_exists(app, sha256: str) -> bool:
    return app.extensions["blobs"].exists(sha256)


def downloaded(client, repo, mirror, upstream, n: int, when: str | None = None):  # noqa: F811
    """File n listed, fetched through the channel, and (if `when`) its last download set."""
    row = listed(repo.db, mirror, upstream, name(n), body(n))
    assert send(client, "GET", url_of(row)).data == body(n)
    if when is not None:
        with transaction(repo.db):
            repo.db.execute("UPDATE mirror_files SET last_download = ? WHERE id = ?",
                            (when, row["id"]))  # fmt: skip
    return row


def test_sizes_take_binary_units():
    assert settings.parse_size("50G") == 50 * 2**30
    assert settings.parse_size("500M") == 500 * 2**20
    assert settings.parse_size("64k") == 64 * 1024
    assert settings.parse_size("2TiB") == 2 * 2**40
    assert settings.parse_size("4096") == 4096
    for bad in ("", "G", "1.5G", "-1M", "10X"):
        with pytest.raises(Invalid):
            settings.parse_size(bad)


def test_quota_and_min_age_are_stored_and_listed(app, repo, made, upstream):  # noqa: F811
    mirror_of(app, repo, made, upstream, quota=500 * 2**20,
              min_age=timedelta(days=7))  # fmt: skip

    (shown,) = settings.listing(repo.db)

    assert shown["quota"] == 500 * 2**20 and shown["min_age"] == WEEK


def test_a_min_age_needs_a_pypi_upstream(repo, made, upstream):  # noqa: F811
    with pytest.raises(Invalid, match="pypi upstream only"):
        settings.create(repo.db, made.channel_id, "cran", upstream.url + "/",
                        min_age=timedelta(days=1))  # fmt: skip


def test_past_the_quota_the_least_recently_downloaded_go_first(
    app,
    client,
    repo,
    made,
    upstream,  # noqa: F811
):
    mirror = mirror_of(app, repo, made, upstream, quota=2 * SIZE + SIZE // 2)
    first = downloaded(client, repo, mirror, upstream, 1, "2026-03-01T00:00:00.000000Z")
    second = downloaded(client, repo, mirror, upstream, 2, "2026-02-01T00:00:00.000000Z")

    downloaded(client, repo, mirror, upstream, 3)

    assert [cached(repo, name(n)) for n in (1, 2, 3)] == [True, False, True]
    assert blob_exists(app, first["sha256"]) and not blob_exists(app, second["sha256"])
    assert row_of(repo.db, name(2))["metadata_blob"] is None


def test_the_file_just_cached_stays_even_when_it_alone_is_past_the_quota(
    app,
    client,
    repo,
    made,
    upstream,  # noqa: F811
):
    mirror = mirror_of(app, repo, made, upstream, quota=SIZE // 2)
    downloaded(client, repo, mirror, upstream, 1)
    assert cached(repo, name(1))

    downloaded(client, repo, mirror, upstream, 2)

    assert [cached(repo, name(n)) for n in (1, 2)] == [False, True]


def test_a_blob_an_upload_holds_is_never_evicted(app, client, repo, made, upstream):  # noqa: F811
    other = repo.channel("other", made.user_id)
    header = token_auth(repo.token(made.user_id, other, "write"))
    assert (
        send(client, "POST", "/api/repo/other", data=twine_form(), headers=header).status_code
        == 200
    )
    mirror = mirror_of(app, repo, made, upstream, quota=SIZE // 2)
    shared = listed(repo.db, mirror, upstream, WHEEL_NAME, wheel())
    assert send(client, "GET", url_of(shared)).data == wheel()
    with transaction(repo.db):
        repo.db.execute("UPDATE mirror_files SET last_download = '2020-01-01T00:00:00Z'")

    downloaded(client, repo, mirror, upstream, 1)
    downloaded(client, repo, mirror, upstream, 2)

    assert cached(repo, WHEEL_NAME) and blob_exists(app, shared["sha256"])
    assert [cached(repo, name(n)) for n in (1, 2)] == [False, True]
    uploaded = f"/api/repo/other/files/{shared['sha256']}/{WHEEL_NAME}"
    assert send(client, "GET", uploaded, headers=header).data == wheel()


def test_an_evicted_file_is_fetched_again_on_its_next_request(
    app,
    client,
    repo,
    made,
    upstream,  # noqa: F811
):
    mirror = mirror_of(app, repo, made, upstream, quota=SIZE)
    first = downloaded(client, repo, mirror, upstream, 1, "2026-01-01T00:00:00.000000Z")
    downloaded(client, repo, mirror, upstream, 2)
    assert not cached(repo, name(1))

    again = send(client, "GET", url_of(first))

    assert again.status_code == 200 and again.data == body(1)
    assert upstream.gets(f"/packages/{name(1)}") == 2
    assert [cached(repo, name(n)) for n in (1, 2)] == [True, False]
    assert hashlib.sha256(body(1)).hexdigest() == row_of(repo.db, name(1))["blob_sha256"]


def test_without_a_quota_nothing_is_evicted(app, client, repo, made, upstream):  # noqa: F811
    mirror = mirror_of(app, repo, made, upstream)
    for n in range(1, 4):
        downloaded(client, repo, mirror, upstream, n)

    assert all(cached(repo, name(n)) for n in range(1, 4))


def stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture
def aged(app, repo, made, upstream):  # noqa: F811
    """A mirror with a week's minimum age and a fresh page of demo: 1.1 uploaded a day ago,
    1.2 two weeks ago, 1.3 with no upload-time; the page is kept 30 days, so the clock can
    move without upstream being asked."""
    mirror = mirror_of(app, repo, made, upstream, min_age=timedelta(days=7), ttl=timedelta(days=30))
    rows = {1: listed(repo.db, mirror, upstream, name(1), body(1), upload_time=stamp(NOW - 86400)),
            2: listed(repo.db, mirror, upstream, name(2), body(2),
                      upload_time=stamp(NOW - 2 * WEEK)),
            3: listed(repo.db, mirror, upstream, name(3), body(3))}  # fmt: skip
    with transaction(repo.db):
        repo.db.execute("INSERT INTO mirror_pages (mirror_id, key, state, checked, changed)"
                        " VALUES (?, 'demo', 'found', ?, 'x')", (mirror.id, NOW))  # fmt: skip
    return rows


def listing(client) -> list[str]:
    response = send(client, "GET", "/api/repo/ch/simple/demo/", headers={"Accept": V1_JSON})
    assert response.status_code == 200
    return [entry["filename"] for entry in response.json["files"]]


def test_files_younger_than_the_min_age_are_not_listed(client, aged):
    assert listing(client) == [name(2), name(3)]


def test_a_file_younger_than_the_min_age_answers_404(client, aged, upstream):  # noqa: F811
    response = send(client, "GET", url_of(aged[1]))

    assert response.status_code == 404 and "minimum age" in response.text
    assert upstream.gets(f"/packages/{name(1)}") == 0
    assert send(client, "GET", url_of(aged[1], ".metadata")).status_code == 404
    assert send(client, "GET", url_of(aged[3])).data == body(3)


def test_a_file_is_listed_and_served_once_it_comes_of_age(app, client, aged):
    assert listing(client) == [name(2), name(3)]

    app.config["CLOCK"] = lambda: NOW + WEEK

    assert listing(client) == [name(1), name(2), name(3)]
    assert send(client, "GET", url_of(aged[1])).data == body(1)


@pytest.mark.usefixtures("fast_passwords")
def test_the_channel_page_shows_the_quota_and_min_age(app, repo, made, upstream, visitor):  # noqa: F811
    mirror_of(app, repo, made, upstream, quota=500 * 2**20, min_age=timedelta(days=7))

    visitor.login("alice")
    page = text(visitor.get("/channels/ch"))

    assert f"files shown once {WEEK} s old" in page and " of 500" in page
