"""Dated snapshots in-process: which files a snapshot lists at instants between uploads, yanks
and deletes, on both sides and under every prefix; the DATE forms and their refusals; caching;
read-only; and that gc keeps what a snapshot still serves. tests/e2e/test_snapshots.py drives
the same with real pip, uv and R."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin

import pytest

from repo import db, files, maintenance
from repo.db import get_db
from repo.snapshots import history, instant

from .builders import demo_wheel, r_form, r_source_of, refusal, send, twine_form

JSON = "application/vnd.pypi.simple.v1+json"


def upload_wheel(client, owner, version: str) -> str:
    dist, name = demo_wheel(version)
    response = client.post("/api/repo/ch", data=twine_form(dist, name, version=version),
                           headers=owner)  # fmt: skip
    assert response.status_code == 200, response.status
    return name


def upload_r(client, owner, version: str) -> str:
    dist, name = r_source_of("abc", version)
    response = client.post("/api/repo/ch", data=r_form(dist, name), headers=owner)
    assert response.status_code == 200, response.status
    return name


def channel_id() -> int:
    return get_db().execute("SELECT id FROM channels WHERE name = 'ch'").fetchone()[0]


def file_id(filename: str) -> int:
    return get_db().execute("SELECT id FROM files WHERE filename = ?", (filename,)).fetchone()[0]


@pytest.fixture
def timeline(client, owner):
    """1.0 of a wheel and of an R package, then 2.0 of both, a yank of the wheel 1.0 and a
    delete of the wheel 2.0 and of R's 1.0, with the instant after each step."""
    moments = {"before": db.now()}
    w1, r1 = upload_wheel(client, owner, "1.0"), upload_r(client, owner, "1.0")
    moments["v1"] = db.now()
    w2, r2 = upload_wheel(client, owner, "2.0"), upload_r(client, owner, "2.0")
    moments["v2"] = db.now()
    files.set_yanked(get_db(), channel_id(), w1, True, "broken")
    moments["yanked"] = db.now()
    files.delete_file(get_db(), channel_id(), file_id(w2))
    files.delete_file(get_db(), channel_id(), file_id(r1))
    moments["deleted"] = db.now()
    return moments, {"w1": w1, "w2": w2, "r1": r1, "r2": r2}


def page(client, owner, url: str) -> dict[str, object]:
    """{filename: yanked} of a snapshot's JSON project page."""
    response = client.get(url, headers={**owner, "Accept": JSON})
    assert response.status_code == 200, response.status
    return {f["filename"]: f["yanked"] for f in response.get_json()["files"]}


def test_a_snapshot_lists_the_files_of_its_instant_with_their_yank_state_then(
    client, owner, timeline
):
    moments, names = timeline
    expected = {
        "before": None,
        "v1": {names["w1"]: False},
        "v2": {names["w1"]: False, names["w2"]: False},
        "yanked": {names["w1"]: "broken", names["w2"]: False},
        "deleted": {names["w1"]: "broken"},
    }
    for moment, listed in expected.items():
        url = f"/api/repo/ch/snapshot/{moments[moment]}/simple/demo-pkg/"
        if listed is None:
            assert client.get(url, headers=owner).status_code == 404
        else:
            assert page(client, owner, url) == listed, moment
    # The live page is the last state.
    assert page(client, owner, "/api/repo/ch/simple/demo-pkg/") == expected["deleted"]


def test_a_snapshot_serves_a_file_deleted_since_and_its_metadata(client, owner, timeline):
    moments, names = timeline
    response = client.get(f"/api/repo/ch/snapshot/{moments['v2']}/simple/demo-pkg/",
                          headers={**owner, "Accept": JSON})  # fmt: skip
    deleted = next(f for f in response.get_json()["files"] if f["filename"] == names["w2"])
    url = urljoin(f"/api/repo/ch/snapshot/{moments['v2']}/simple/demo-pkg/", deleted["url"])
    download = send(client, "GET", url, headers=owner)
    assert download.status_code == 200
    assert download.headers["ETag"].strip('"') == deleted["hashes"]["sha256"]
    metadata = send(client, "GET", url + ".metadata", headers=owner)
    assert metadata.status_code == 200 and b"Version: 2.0" in metadata.data
    # Not through the live URL, nor through a snapshot after the delete.
    live = url.replace(f"/snapshot/{moments['v2']}", "")
    assert send(client, "GET", live, headers=owner).status_code == 404
    later = url.replace(moments["v2"], moments["deleted"])
    assert send(client, "GET", later, headers=owner).status_code == 404


def test_gc_keeps_the_blob_of_a_deleted_file_for_the_snapshots_before_it(app, timeline):
    _, names = timeline
    store = app.extensions["blobs"]
    deleted = (
        get_db()
        .execute(
            "SELECT sha256 FROM file_events WHERE filename = ? AND event = 'delete'", (names["w2"],)
        )
        .fetchone()[0]
    )

    maintenance.gc(get_db(), store, Path(app.config["DATA_DIR"]), grace=0)

    assert deleted in {blob.sha256 for blob in store.listing()}


def packages_at(client, owner, moment: str) -> list[tuple[str, str]]:
    response = send(client, "GET", f"/api/repo/ch/snapshot/{moment}/cran/src/contrib/PACKAGES.gz",
                    headers=owner)  # fmt: skip
    assert response.status_code == 200, response.status
    text = gzip.decompress(response.data).decode()
    records = [dict(line.split(": ", 1) for line in record.splitlines() if ": " in line)
               for record in text.split("\n\n") if record.strip()]  # fmt: skip
    return [(record["Package"], record["Version"]) for record in records]


def test_the_r_side_of_a_snapshot_lists_the_versions_of_its_instant(client, owner, timeline):
    moments, names = timeline
    assert packages_at(client, owner, moments["before"]) == []
    assert packages_at(client, owner, moments["v1"]) == [("abc", "1.0")]
    assert packages_at(client, owner, moments["v2"]) == [("abc", "2.0")]
    assert packages_at(client, owner, moments["deleted"]) == [("abc", "2.0")]
    # R's 1.0, deleted since, still installs from the snapshot that listed it.
    url = f"/api/repo/ch/snapshot/{moments['v1']}/cran/src/contrib/{names['r1']}"
    assert send(client, "GET", url, headers=owner).status_code == 200
    assert send(client, "GET", url.replace(moments["v1"], moments["deleted"]),
                headers=owner).status_code == 404  # fmt: skip


def test_every_prefix_serves_the_snapshot(client, repo, timeline):
    moments, names = timeline
    alice = get_db().execute("SELECT id FROM users WHERE name = 'alice'").fetchone()[0]
    secret = repo.token(alice, channel_id(), "read")
    for prefix in (f"/api/repo/t/{secret}", f"/api/t/{secret}/repo"):
        url = f"{prefix}/ch/snapshot/{moments['v1']}/simple/demo-pkg/"
        response = client.get(url, headers={"Accept": JSON})
        assert [f["filename"] for f in response.get_json()["files"]] == [names["w1"]], prefix
        packages = f"{prefix}/ch/snapshot/{moments['v1']}/cran/src/contrib/PACKAGES"
        cran = send(client, "GET", packages)
        assert b"Version: 1.0" in cran.data


def test_a_day_means_its_end_and_an_instant_may_have_any_offset():
    moment = datetime(2026, 12, 2, 12, tzinfo=UTC)
    assert instant.parse("2026-11-15", moment) == datetime(2026, 11, 15, 23, 59, 59, 999999,
                                                           tzinfo=UTC)  # fmt: skip
    assert instant.parse("2026-11-15T10:00:00+02:00", moment) == datetime(2026, 11, 15, 8,
                                                                          tzinfo=UTC)  # fmt: skip
    assert instant.parse("2026-11-15t10:00:00.1234567z", moment) == datetime(
        2026, 11, 15, 10, 0, 0, 123456, tzinfo=UTC
    )


NOT_DATES = ["yesterday", "2026-02-30", "2026-11-15T10:00:00", "2026-11-15 10:00:00Z",
             "2026-11-15T25:00:00Z", "20261115"]  # fmt: skip


@pytest.mark.parametrize("date", NOT_DATES)
def test_a_date_that_is_no_day_or_instant_is_refused_with_the_forms_it_may_take(
    client, owner, date
):
    response = send(client, "GET", f"/api/repo/ch/snapshot/{date}/simple/", headers=owner)
    assert response.status_code == 400
    assert f"Not a snapshot date: '{date}'" in refusal(response)
    assert "RFC 3339" in refusal(response)


def test_a_snapshot_in_the_future_is_refused(client, owner):
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    for date in (tomorrow, instant.label(datetime.now(UTC) + timedelta(minutes=1))):
        response = send(client, "GET", f"/api/repo/ch/snapshot/{date}/cran/src/contrib/PACKAGES",
                        headers=owner)  # fmt: skip
        assert response.status_code == 400
        assert "is in the future" in refusal(response)


def test_a_snapshot_from_before_the_channel_is_an_empty_index(client, owner):
    root = client.get("/api/repo/ch/snapshot/2020-01-01/simple/", headers={**owner, "Accept": JSON})
    assert root.status_code == 200 and root.get_json()["projects"] == []
    packages = send(client, "GET", "/api/repo/ch/snapshot/2020-01-01/cran/src/contrib/PACKAGES",
                    headers=owner)  # fmt: skip
    assert packages.status_code == 200 and packages.data == b""


def test_a_settled_snapshot_is_immutable_and_a_recent_one_revalidates(client, owner, timeline):
    moments, _ = timeline
    old = client.get("/api/repo/ch/snapshot/2020-01-01/simple/", headers=owner)
    assert old.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    etag = old.headers["ETag"]
    assert not etag.startswith("W/")
    again = client.get("/api/repo/ch/snapshot/2020-01-01/simple/",
                       headers={**owner, "If-None-Match": etag})  # fmt: skip
    assert again.status_code == 304
    recent = client.get(f"/api/repo/ch/snapshot/{moments['v1']}/simple/demo-pkg/", headers=owner)
    assert recent.headers["Cache-Control"] == "max-age=0, must-revalidate, private"
    r_old = send(client, "GET", "/api/repo/ch/snapshot/2020-01-01/cran/src/contrib/PACKAGES.rds",
                 headers=owner)  # fmt: skip
    assert r_old.headers["Cache-Control"] == "private, max-age=31536000, immutable"


def test_an_upload_to_a_snapshot_is_405_and_says_where_uploads_go(client, owner, app):
    for url in ("/api/repo/ch/snapshot/2026-11-15", "/api/repo/ch/snapshot/2026-11-15/"):
        dist, name = demo_wheel("3.0")
        response = send(client, "POST", url, data=twine_form(dist, name, version="3.0"),
                        headers=owner)  # fmt: skip
        assert response.status_code == 405
        assert "read-only; upload to /api/repo/ch" in refusal(response)
        assert response.headers["Allow"] == "GET, HEAD"
    assert get_db().execute("SELECT count(*) FROM files").fetchone()[0] == 0


def test_the_history_lists_each_event_with_its_time_and_who(client, owner, timeline):
    _, names = timeline
    events = history.of_channel(get_db(), channel_id())
    assert [(e["event"], e["filename"]) for e in events] == [
        ("upload", names["w1"]), ("upload", names["r1"]), ("upload", names["w2"]),
        ("upload", names["r2"]), ("yank", names["w1"]), ("delete", names["w2"]),
        ("delete", names["r1"]),
    ]  # fmt: skip
    assert [e["actor"] for e in events] == ["alice"] * 4 + [None] * 3
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    assert [e["event"] for e in history.of_channel(get_db(), channel_id(), limit=2)] == [
        "delete",
        "delete",
    ]
    assert json.dumps([dict(e) for e in events])  # plain values, for the JSON API
