"""A mirror channel's PyPI pages through the app, against FakePyPI on 127.0.0.1: upstream pages
read in either format and passed on with every field (mirror.md R18), the TTL and conditional
revalidation on an injected clock (R1), the serial guard (R4), stale-while-revalidate (R3),
upstream down (R6, R8, R11), 404s remembered (R9, R10), private names (R23-R25), quarantine
(R20), the root (R22), one upstream request for many clients (R13), and the ETag (R2)."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from repo.db import dialect, transaction
from repo.errors import Invalid
from repo.mirror import pypi as mirror_pypi
from repo.mirror import settings
from repo.mirror.upstream import BREAKER_FIRST
from repo.pypi import fastpath
from repo.pypi.simple import HTML, V1_JSON, FileEntry, project_page, read_project_page

from ..conftest import UNTHROTTLED, make_app, restarted
from ..e2e.upstreams import FakePyPI
from .builders import send, token_auth, twine_form, wheel
from .test_mirror_upstream import Clock

DEADLINE = 10.0
UPLOADED = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(tmp_path, clock):
    """The app of every test here, on the injected clock."""
    app = make_app(tmp_path / "data", CLOCK=clock, **UNTHROTTLED)
    with app.app_context():
        yield app
    if "upstream_client" in app.extensions:
        app.extensions["upstream_client"][1].close()


@pytest.fixture
def fake():
    upstream = FakePyPI()
    yield upstream
    # stop() waits out each listener's 0.5 s poll; no later test needs these ports.
    threading.Thread(target=upstream.stop, daemon=True).start()


@pytest.fixture
def world(repo, fake):
    """alice's public channel `ch`, mirroring the fake upstream (TTL 600 s)."""
    made = repo.owner_with_channel("alice", "ch", public=True)
    mirror = settings.create(repo.db, made.channel_id, "pypi", fake.index_url)
    return SimpleNamespace(channel_id=made.channel_id, mirror=mirror,
                           token=repo.token(made.user_id))  # fmt: skip


def dist(tmp_path: Path, name: str, version: str, requires_python: str | None = None,
         variant: bytes = b"") -> Path:  # fmt: skip
    """A small wheel of `name` `version` on disk, for FakePyPI to publish."""
    module = name.replace("-", "_")
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    if requires_python:
        meta += f"Requires-Python: {requires_python}\n"
    path = tmp_path / f"{module}-{version}-py3-none-any.whl"
    path.write_bytes(wheel(meta.encode(), f"{module}-{version}.dist-info", code=variant))
    return path


def page(client, name: str, accept: str = V1_JSON, **headers: str):
    """`name`'s page in channel `ch`, anonymously (the channel is public)."""
    headers["Accept"] = accept
    return send(client, "GET", f"/api/repo/ch/simple/{name}/", headers=headers)


def files_of(response) -> list[str]:
    return [f["filename"] for f in response.json["files"]]


def asked(fake: FakePyPI, name: str) -> int:
    """How many requests the upstream had for `name`'s page."""
    return fake.log.count(f"/simple/{name}*", server="index")


def upload(client, world, name: str, version: str = "1.0", code: bytes = b"") -> str:
    """A private wheel of `name` in `ch`; its sha256."""
    module = name.replace("-", "_")
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    content = wheel(meta, f"{module}-{version}.dist-info", code=code)
    form = twine_form(content, f"{module}-{version}-py3-none-any.whl", name=name, version=version)
    response = send(client, "POST", "/api/repo/ch/", data=form, headers=token_auth(world.token))
    assert response.status_code == 200, response.status
    return hashlib.sha256(content).hexdigest()


def settled() -> None:
    """Wait for the page checks still running in the background (none may outlive a test)."""
    for thread in threading.enumerate():
        if thread.name.startswith("mirror-page-"):
            thread.join(DEADLINE)


@pytest.fixture
def writes(repo):
    """Count every write to mirror_files from now on (R1: a 304 writes none), by a trigger
    in each engine's own syntax."""
    repo.db.execute("CREATE TABLE writes (kind TEXT)")
    if dialect(repo.db) == "postgresql":
        repo.db.execute(
            "CREATE FUNCTION written() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN INSERT INTO writes VALUES (TG_OP); RETURN NULL; END $$"
        )
        repo.db.execute("CREATE TRIGGER written AFTER INSERT OR UPDATE OR DELETE ON"
                        " mirror_files FOR EACH ROW EXECUTE FUNCTION written()")  # fmt: skip
    else:
        for event in ("INSERT", "UPDATE", "DELETE"):
            repo.db.execute(f"CREATE TRIGGER written_{event} AFTER {event} ON mirror_files"
                            f" BEGIN INSERT INTO writes VALUES ('{event}'); END")  # fmt: skip
    return lambda: repo.db.execute("SELECT count(*) FROM writes").fetchone()[0]


# --- reading upstream pages ----------------------------------------------------------------

SHA = {name: hashlib.sha256(name.encode()).hexdigest() for name in "abcdefg"}
WAREHOUSE_JSON = {
    "meta": {"api-version": "1.4", "_last-serial": 42},
    "name": "demo-pkg",
    "versions": ["1.0", "2.0"],
    "project-status": {"status": "archived", "reason": "moved to demo2"},
    "files": [
        {"filename": "demo_pkg-1.0-py3-none-any.whl", "url": "https://files.example/d/1.whl",
         "hashes": {"sha256": SHA["a"]}, "requires-python": ">=3.8", "size": 1231,
         "upload-time": "2026-01-02T03:04:05.678901Z", "yanked": False,
         "data-dist-info-metadata": {"sha256": SHA["b"]}, "core-metadata": {"sha256": SHA["b"]}},
        {"filename": "demo-pkg-2.0.tar.gz", "url": "../../d/2.tar.gz",
         "hashes": {"sha256": SHA["c"].upper()}, "requires-python": None, "size": 99,
         "upload-time": "yesterday", "yanked": "broken build", "core-metadata": False},
        {"filename": "demo_pkg-2.0-py3-none-any.whl", "url": "d/2.whl", "hashes": {},
         "yanked": True},  # no sha256: nobody could check it
        {"filename": "other-1.0.tar.gz", "url": "o.tar.gz", "hashes": {"sha256": SHA["d"]}},
        {"filename": "demo_pkg-1.0.win32.exe", "url": "x.exe", "hashes": {"sha256": SHA["e"]}},
        {"filename": "demo_pkg-3.0-py3-none-any.whl", "url": "d/3.whl", "yanked": True,
         "hashes": {"sha256": SHA["f"]}, "dist-info-metadata": True},
    ],
}  # fmt: skip
PYPI_HTML = f"""<!DOCTYPE html>
<html><head><meta name="pypi:repository-version" content="1.1">
<meta name="pypi:project-status" content="quarantined">
<meta name="pypi:project-status-reason" content="malware &amp; more"><title>Links</title></head>
<body>
<a href="../../packages/demo_pkg-1.0-py3-none-any.whl#sha256={SHA["a"]}"
   data-requires-python="&gt;=3.8" data-dist-info-metadata="sha256={SHA["b"]}">x</a><br/>
<a href="https://files.example/demo-pkg-2.0.tar.gz#md5=abc&amp;sha256={SHA["c"]}"
   data-yanked>demo-pkg-2.0.tar.gz</a>
<a href="/p/demo_pkg-2.1-py3-none-any.whl#sha256={SHA["d"]}" data-yanked="old"
   data-core-metadata="true">demo_pkg-2.1-py3-none-any.whl</a>
<a href="/p/demo_pkg-0.1.tar.gz#md5=abc">md5 only</a>
<a href="/p/demo_pkg-0.2%2Bx.zip#sha256={SHA["e"]}" data-core-metadata="sha512=ff">zip</a>
</body></html>
<!--SERIAL 77-->
"""


def test_a_json_page_is_read_with_every_field():
    listing = read_project_page(V1_JSON, json.dumps(WAREHOUSE_JSON).encode(), "demo-pkg")

    assert (listing.name, listing.serial) == ("demo-pkg", 42)
    assert (listing.status, listing.status_reason) == ("archived", "moved to demo2")
    whl, sdist, late = listing.links
    assert (whl.filename, whl.version, whl.url, whl.sha256) == (
        "demo_pkg-1.0-py3-none-any.whl",
        "1.0",
        "https://files.example/d/1.whl",
        SHA["a"],
    )
    assert (whl.size, whl.upload_time, whl.requires_python) == (
        1231, "2026-01-02T03:04:05.678901Z", ">=3.8")  # fmt: skip
    assert (whl.yanked, whl.core_metadata) == (False, f"sha256={SHA['b']}")
    # The old sdist spelling keeps the name's `-`; a hash in capitals is still a sha256.
    assert (sdist.version, sdist.sha256, sdist.upload_time) == ("2.0", SHA["c"], None)
    assert (sdist.yanked, sdist.yanked_reason, sdist.core_metadata) == (True, "broken build",
                                                                         None)  # fmt: skip
    assert (late.yanked, late.yanked_reason, late.core_metadata) == (True, None, "true")


def test_an_html_page_is_read_with_every_attribute():
    listing = read_project_page("text/html; charset=utf-8", PYPI_HTML.encode(), "demo-pkg")

    assert (listing.name, listing.serial) == (None, 77)
    assert (listing.status, listing.status_reason) == ("quarantined", "malware & more")
    assert [(link.filename, link.version, link.sha256) for link in listing.links] == [
        ("demo_pkg-1.0-py3-none-any.whl", "1.0", SHA["a"]),
        ("demo-pkg-2.0.tar.gz", "2.0", SHA["c"]),
        ("demo_pkg-2.1-py3-none-any.whl", "2.1", SHA["d"]),
        ("demo_pkg-0.2+x.zip", "0.2+x", SHA["e"]),
    ]
    first, second, third, fourth = listing.links
    assert first.url == "../../packages/demo_pkg-1.0-py3-none-any.whl"
    assert (first.requires_python, first.core_metadata) == (">=3.8", f"sha256={SHA['b']}")
    assert (second.yanked, second.yanked_reason) == (True, None)
    assert (third.yanked, third.yanked_reason, third.core_metadata) == (True, "old", "true")
    assert fourth.core_metadata == "true"  # a hash we do not check is an unknown one
    assert {link.size for link in listing.links} == {None}  # HTML has no PEP 700 fields


@pytest.mark.parametrize("content_type", [HTML, V1_JSON])
def test_our_own_pages_read_back_as_they_were_rendered(content_type):
    files = [
        FileEntry("demo-1.0.tar.gz", "1.0", SHA["a"], 10, "2026-01-02T03:04:05.000001Z", "<4",
                  None, True, '"><b>'),
        FileEntry("demo-1.0-py3-none-any.whl", "1.0", SHA["b"], 11, None, None, SHA["c"],
                  False, None),
    ]  # fmt: skip
    body = project_page(content_type, "demo", files, "archived", "see <demo2>")

    listing = read_project_page(content_type, body.encode(), "demo")

    assert [
        (link.filename, link.sha256, link.requires_python, link.yanked_reason)
        for link in listing.links
    ] == [
        ("demo-1.0.tar.gz", SHA["a"], "<4", '"><b>'),
        ("demo-1.0-py3-none-any.whl", SHA["b"], None, None),
    ]
    assert listing.links[1].core_metadata == f"sha256={SHA['c']}"
    assert (listing.status, listing.status_reason) == ("archived", "see <demo2>")


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/json", b"{}"),
        (V1_JSON, b'{"meta": {"api-version": "2.0"}, "files": []}'),
        (V1_JSON, b"[1, 2]"),
        (V1_JSON, b"not json"),
        ("", b"<html></html>"),
    ],
)
def test_a_page_we_cannot_read_is_refused(content_type, body):
    with pytest.raises(ValueError):
        read_project_page(content_type, body, "demo")


# --- pages through the app -----------------------------------------------------------------


def test_upstream_fields_are_passed_on_with_links_to_this_channel(client, world, fake,
                                                                  tmp_path):  # fmt: skip
    old = fake.add(dist(tmp_path, "demo-pkg", "1.0", ">=3.8"), upload_time=UPLOADED,
                   yanked="broken build")  # fmt: skip
    new = fake.add(dist(tmp_path, "demo-pkg", "2.0"), upload_time=UPLOADED)

    data = page(client, "demo-pkg").json

    assert data["meta"] == {"api-version": "1.4"}
    assert (data["name"], data["versions"]) == ("demo-pkg", ["1.0", "2.0"])
    assert data["project-status"] == {"status": "active"}
    assert data["files"][0] == {
        "filename": old.filename, "url": f"../../files/{old.sha256}/{old.filename}",
        "hashes": {"sha256": old.sha256}, "requires-python": ">=3.8",
        "core-metadata": {"sha256": old.metadata_sha256},
        "dist-info-metadata": {"sha256": old.metadata_sha256},
        "size": old.size, "upload-time": "2026-01-02T03:04:05.678901Z", "yanked": "broken build",
    }  # fmt: skip
    assert data["files"][1]["yanked"] is False
    (request,) = fake.log.requests("/simple/demo-pkg/")
    assert request.headers["Accept"] == mirror_pypi.ACCEPT
    html = page(client, "demo-pkg", HTML).get_data(as_text=True)
    assert f'href="../../files/{new.sha256}/{new.filename}#sha256={new.sha256}"' in html
    assert f'data-core-metadata="sha256={new.metadata_sha256}"' in html


def test_files_keep_the_upstream_url_for_the_download_side(client, world, fake, repo,
                                                           tmp_path):  # fmt: skip
    file = fake.add(dist(tmp_path, "demo-pkg", "1.0"))

    page(client, "demo-pkg")

    row = repo.db.execute("SELECT * FROM mirror_files").fetchone()
    assert (row["project"], row["url"], row["sha256"], row["listed"]) == (
        "demo-pkg", file.url, file.sha256, 1)  # fmt: skip
    assert row["core_metadata"] == f"sha256={file.metadata_sha256}"
    assert row["url"].startswith(fake.files_url)  # the files port, as PyPI's files host


def test_an_html_only_upstream_is_read_by_its_content_type(client, world, fake, repo, tmp_path):
    file = fake.add(dist(tmp_path, "demo-pkg", "1.0", ">=3.8"), yanked=True)
    fake.faults.set("demo-pkg", html_only=True)

    data = page(client, "demo-pkg").json

    (entry,) = data["files"]
    assert (entry["hashes"], entry["requires-python"], entry["yanked"]) == (
        {"sha256": file.sha256}, ">=3.8", True)  # fmt: skip
    assert entry["core-metadata"] == {"sha256": file.metadata_sha256}
    assert "size" not in entry and "upload-time" not in entry  # HTML says neither
    serial = repo.db.execute("SELECT serial FROM mirror_pages").fetchone()[0]
    assert serial == fake.serial


def test_a_page_is_reused_for_its_ttl_then_revalidated_with_its_etag(
    client, world, fake, repo, clock, writes, tmp_path
):
    fake.add(dist(tmp_path, "demo-pkg", "1.0"))
    first = page(client, "demo-pkg")
    clock.now += 1
    assert page(client, "demo-pkg").get_data() == first.get_data()
    assert asked(fake, "demo-pkg") == 1
    before = writes()

    clock.now += 600
    again = page(client, "demo-pkg")

    revalidation = fake.log.requests("/simple/demo-pkg/")[1]
    assert revalidation.headers["If-None-Match"] is not None
    assert revalidation.status == 304
    assert again.get_data() == first.get_data() and again.headers["ETag"] == first.headers["ETag"]
    assert writes() == before  # no file row rewritten
    checked = repo.db.execute("SELECT checked FROM mirror_pages").fetchone()[0]
    assert checked == clock.now  # the TTL starts again
    clock.now += 599
    page(client, "demo-pkg")
    assert asked(fake, "demo-pkg") == 2


def test_the_stored_etag_is_the_one_sent(client, world, fake, repo, clock, tmp_path):
    fake.add(dist(tmp_path, "demo-pkg", "1.0"))
    page(client, "demo-pkg")
    stored = repo.db.execute("SELECT etag FROM mirror_pages").fetchone()[0]

    clock.now += 601
    page(client, "demo-pkg")

    assert stored and fake.log.requests("/simple/demo-pkg/")[1].headers["If-None-Match"] == stored


def test_a_new_release_appears_after_the_ttl(client, world, fake, clock, tmp_path):
    fake.add(dist(tmp_path, "demo-pkg", "1.0"))
    first = page(client, "demo-pkg")
    fake.add(dist(tmp_path, "demo-pkg", "2.0"))
    assert page(client, "demo-pkg").json["versions"] == ["1.0"]

    clock.now += 601
    after = page(client, "demo-pkg")

    assert after.json["versions"] == ["1.0", "2.0"]
    assert after.headers["ETag"] != first.headers["ETag"]


def test_an_older_serial_never_replaces_the_cached_page(client, world, fake, repo, clock,
                                                        tmp_path):  # fmt: skip
    fake.add(dist(tmp_path, "demo-pkg", "1.0"))
    fake.add(dist(tmp_path, "demo-pkg", "2.0"))
    page(client, "demo-pkg")
    # A lagging CDN node (mirror.md fact 1): an answer that says it is older than ours.
    fake.add(dist(tmp_path, "demo-pkg", "3.0"))
    fake.faults.set("demo-pkg", serial=1)

    clock.now += 601
    lagging = page(client, "demo-pkg")

    assert lagging.json["versions"] == ["1.0", "2.0"]
    assert repo.db.execute("SELECT serial FROM mirror_pages").fetchone()[0] == 2
    fake.faults.clear()
    clock.now += 601
    assert page(client, "demo-pkg").json["versions"] == ["1.0", "2.0", "3.0"]


def test_a_slow_upstream_gets_the_stale_page_and_the_check_finishes_behind(
    client, world, fake, clock, monkeypatch, tmp_path
):
    monkeypatch.setattr(mirror_pypi, "STALE_WAIT", 0.05)
    fake.add(dist(tmp_path, "demo-pkg", "1.0"))
    page(client, "demo-pkg")
    fake.add(dist(tmp_path, "demo-pkg", "2.0"))
    fake.faults.set("demo-pkg", delay=1.0)  # far past the client's wait

    clock.now += 601
    stale = page(client, "demo-pkg")
    page(client, "demo-pkg")  # meanwhile: waits for that check, asks nothing itself
    settled()
    fresh = page(client, "demo-pkg")

    assert stale.status_code == 200
    assert (stale.json["versions"], stale.headers["X-Repo-Cache"]) == (["1.0"], "stale")
    assert fresh.json["versions"] == ["1.0", "2.0"] and "X-Repo-Cache" not in fresh.headers
    assert asked(fake, "demo-pkg") == 2


def test_without_a_copy_a_slow_upstream_is_waited_for_then_503(
    client, world, fake, monkeypatch, tmp_path
):
    monkeypatch.setattr(mirror_pypi, "COLD_WAIT", 0.05)
    fake.add(dist(tmp_path, "demo-pkg", "1.0"))
    fake.faults.set("demo-pkg", delay=1.0)

    response = page(client, "demo-pkg")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "did not answer within 0.05 s" in response.get_data(as_text=True)
    settled()
    assert page(client, "demo-pkg").status_code == 200  # the check went on, and was kept
    assert asked(fake, "demo-pkg") == 1


def test_upstream_down_serves_the_cached_page_with_only_the_files_we_hold(
    client, world, fake, repo, clock, tmp_path
):
    held = fake.add(dist(tmp_path, "demo-pkg", "1.0"))
    fake.add(dist(tmp_path, "demo-pkg", "2.0"))
    page(client, "demo-pkg")
    with transaction(repo.db):
        repo.db.execute("UPDATE mirror_files SET blob_sha256 = sha256 WHERE filename = ?",
                        (held.filename,))  # fmt: skip
    fake.stop()

    clock.now += 601
    down = page(client, "demo-pkg")
    again = page(client, "demo-pkg")  # the breaker is open: nobody asks upstream

    assert down.status_code == again.status_code == 200
    assert down.headers["X-Repo-Cache"] == "stale; upstream=down"
    assert files_of(down) == files_of(again) == [held.filename]
    fake.start()
    clock.now += BREAKER_FIRST  # one probe, which finds it back
    assert len(files_of(page(client, "demo-pkg"))) == 2


def test_upstream_down_without_a_copy_is_503_with_retry_after_and_the_reason(client, world,
                                                                            fake):  # fmt: skip
    fake.stop()

    first = page(client, "demo-pkg")
    second = page(client, "demo-pkg")

    for response in (first, second):
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert response.mimetype == "text/plain"
        message = response.get_data(as_text=True).strip()
        assert f"Upstream {fake.index_url} is unavailable (cannot connect" in message
        assert response.status == f"503 {message}"


def test_a_restart_with_the_upstream_gone_still_serves_what_was_cached(
    client, world, fake, repo, clock, tmp_path, app
):
    file = fake.add(dist(tmp_path, "demo-pkg", "1.0"))
    page(client, "demo-pkg")
    with transaction(repo.db):
        repo.db.execute("UPDATE mirror_files SET blob_sha256 = sha256")
    fake.stop()

    again = restarted(app, CLOCK=clock)
    clock.now += 601
    response = page(again.test_client(), "demo-pkg")

    assert (response.status_code, files_of(response)) == (200, [file.filename])
    again.extensions["upstream_client"][1].close()


def test_upstream_404_is_remembered_for_60_seconds(client, world, fake, clock, tmp_path):
    assert page(client, "newcomer").status_code == 404
    fake.add(dist(tmp_path, "newcomer", "1.0"))
    clock.now += 59
    assert page(client, "newcomer").status_code == 404
    assert asked(fake, "newcomer") == 1

    clock.now += 2
    assert page(client, "newcomer").status_code == 200
    assert asked(fake, "newcomer") == 2


def test_a_project_deleted_upstream_disappears_and_its_blobs_stay(client, world, fake, repo,
                                                                  clock, tmp_path):  # fmt: skip
    fake.add(dist(tmp_path, "demo-pkg", "1.0"))
    page(client, "demo-pkg")
    with transaction(repo.db):
        repo.db.execute("UPDATE mirror_files SET blob_sha256 = sha256")
    fake.remove("demo-pkg")

    clock.now += 601
    response = page(client, "demo-pkg")

    assert response.status_code == 404
    row = repo.db.execute("SELECT listed, blob_sha256 FROM mirror_files").fetchone()
    assert (row["listed"], row["blob_sha256"] is not None) == (0, True)


@pytest.mark.parametrize("name, status", [("Demo_Pkg", 301), ("-demo-", 404), ("a%0Ab", 404),
                                          ("..", 404), ("a%2Fb", 404)])  # fmt: skip
def test_names_that_are_not_normalized_or_invalid_never_reach_upstream(client, world, fake, name,
                                                                        status):  # fmt: skip
    assert page(client, name).status_code == status
    assert fake.log.count(server="index") == 0


def test_a_private_name_hides_every_upstream_release_and_is_never_asked_for(
    client, world, fake, tmp_path
):
    private = upload(client, world, "acme-x", "1.0")
    fake.add(dist(tmp_path, "acme-x", "99.0"))

    data = page(client, "acme-x").json

    assert (data["versions"], [f["hashes"]["sha256"] for f in data["files"]]) == (
        ["1.0"],
        [private],
    )
    assert asked(fake, "acme-x") == 0


def test_a_reserved_prefix_is_never_asked_for(client, world, fake, repo, tmp_path):
    settings.add_rule(repo.db, world.channel_id, "pypi", "acme-*", "reserve")
    fake.add(dist(tmp_path, "acme-y", "1.0"))

    assert page(client, "acme-y").status_code == 404
    assert page(client, "acme").status_code == 404
    assert asked(fake, "acme-y") == 0 and asked(fake, "acme") == 1  # `acme` is no `acme-*`


def test_a_page_cached_before_the_name_went_private_hides_upstream_at_once(
    client, world, fake, repo, tmp_path
):
    fake.add(dist(tmp_path, "acme-x", "99.0"))
    fake.add(dist(tmp_path, "acme-y", "99.0"))
    assert page(client, "acme-x").json["versions"] == ["99.0"]
    assert page(client, "acme-y").json["versions"] == ["99.0"]

    private = upload(client, world, "acme-x", "1.0")
    settings.add_rule(repo.db, world.channel_id, "pypi", "acme-y", "reserve")

    data = page(client, "acme-x").json  # both pages within their TTL
    assert ([f["hashes"]["sha256"] for f in data["files"]], data["versions"]) == (
        [private],
        ["1.0"],
    )
    assert page(client, "acme-y").status_code == 404
    assert asked(fake, "acme-x") == 1 and asked(fake, "acme-y") == 1


def test_merging_is_an_opt_in_and_the_private_file_of_a_name_wins(client, world, fake, repo,
                                                                  tmp_path):  # fmt: skip
    private = upload(client, world, "acme-x", "1.0")
    settings.add_rule(repo.db, world.channel_id, "pypi", "acme-x", "merge")
    fake.add(dist(tmp_path, "acme-x", "1.0", variant=b"# other bytes, same filename"))
    upstream = fake.add(dist(tmp_path, "acme-x", "99.0"))

    data = page(client, "acme-x").json

    assert data["versions"] == ["1.0", "99.0"]
    assert [f["hashes"]["sha256"] for f in data["files"]] == [private, upstream.sha256]


def test_a_merged_name_keeps_its_private_files_when_upstream_is_down(client, world, fake, repo):
    private = upload(client, world, "acme-x", "1.0")
    settings.add_rule(repo.db, world.channel_id, "pypi", "acme-x", "merge")
    fake.stop()

    response = page(client, "acme-x")

    assert response.status_code == 200
    assert [f["hashes"]["sha256"] for f in response.json["files"]] == [private]
    assert response.headers["X-Repo-Cache"] == "stale; upstream=down"


def test_a_quarantined_project_offers_no_files_and_says_so(client, world, fake, clock,
                                                            tmp_path):  # fmt: skip
    fake.add(dist(tmp_path, "demo-pkg", "1.0"))
    page(client, "demo-pkg")
    fake.set_status("demo-pkg", "quarantined", "malware")

    clock.now += 601
    data = page(client, "demo-pkg").json
    html = page(client, "demo-pkg", HTML).get_data(as_text=True)

    assert (data["files"], data["versions"]) == ([], [])
    assert data["project-status"] == {"status": "quarantined", "reason": "malware"}
    assert '<meta name="pypi:project-status" content="quarantined">' in html
    assert '<meta name="pypi:project-status-reason" content="malware">' in html
    assert "<a " not in html


def test_the_root_lists_what_the_channel_holds_never_the_upstreams_root(client, world, fake,
                                                                        tmp_path):  # fmt: skip
    upload(client, world, "Demo.Pkg")
    for name in ("alpha", "quarantined-one", "unasked"):
        fake.add(dist(tmp_path, name, "1.0"))
    fake.set_status("quarantined-one", "quarantined")
    for name in ("alpha", "quarantined-one", "ghost"):
        page(client, name)

    root = send(client, "GET", "/api/repo/ch/simple/", headers={"Accept": V1_JSON})

    assert root.json["projects"] == [{"name": "alpha"}, {"name": "Demo.Pkg"}]
    assert fake.log.count("/simple/", server="index") == 0


@pytest.mark.parametrize("cached", [True, False], ids=["expired-page", "unknown-name"])
def test_many_clients_at_once_make_one_upstream_request(
    client, world, fake, clock, monkeypatch, tmp_path, cached
):
    monkeypatch.setattr(mirror_pypi, "STALE_WAIT", DEADLINE)  # everybody waits for the one
    fake.add(dist(tmp_path, "demo-pkg", "1.0"))
    if cached:
        page(client, "demo-pkg")
        clock.now += 601
    fake.add(dist(tmp_path, "demo-pkg", "2.0"))
    fake.faults.set("demo-pkg", delay=0.5)
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(page(client, "demo-pkg")))
               for _ in range(8)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)

    assert [a.json["versions"] for a in answers] == [["1.0", "2.0"]] * 8
    assert asked(fake, "demo-pkg") == (2 if cached else 1)
    settled()


def test_pages_keep_the_cache_contract_and_revalidate_cheaply(client, world, fake, clock,
                                                               tmp_path):  # fmt: skip
    fake.add(dist(tmp_path, "demo-pkg", "1.0"))
    first = page(client, "demo-pkg")

    assert first.headers["Cache-Control"] == "max-age=0, must-revalidate, private"
    assert first.headers["Vary"] == "Accept"
    assert not first.headers["ETag"].startswith("W/")
    assert page(client, "demo-pkg", HTML).headers["ETag"] != first.headers["ETag"]
    unchanged = page(client, "demo-pkg", **{"If-None-Match": first.headers["ETag"]})
    assert unchanged.status_code == 304


def test_the_fast_path_answers_a_fresh_mirror_page_and_hands_an_expired_one_to_flask(
    client, world, fake, clock, monkeypatch, tmp_path
):
    seen = []
    original = fastpath.FastIndex._answer

    def spy(self, environ):
        answer = original(self, environ)
        seen.append(answer is not None)
        return answer

    monkeypatch.setattr(fastpath.FastIndex, "_answer", spy)
    fake.add(dist(tmp_path, "demo-pkg", "1.0"))
    first = page(client, "demo-pkg")
    cached = page(client, "demo-pkg")
    fake.add(dist(tmp_path, "demo-pkg", "2.0"))
    clock.now += 601
    expired = page(client, "demo-pkg")

    assert seen == [False, True, False]
    assert cached.get_data() == first.get_data()
    assert expired.json["versions"] == ["1.0", "2.0"]


def test_refresh_checks_a_name_now_and_mark_stale_makes_every_page_revalidate(
    app, client, world, fake, repo, tmp_path
):
    fake.add(dist(tmp_path, "demo-pkg", "1.0"))
    page(client, "demo-pkg")
    fake.add(dist(tmp_path, "demo-pkg", "2.0"))
    channel = repo.db.execute("SELECT * FROM channels WHERE name = 'ch'").fetchone()

    row = mirror_pypi.refresh(app, channel, "demo-pkg")

    assert (row["state"], row["serial"]) == ("found", fake.serial)
    assert page(client, "demo-pkg").json["versions"] == ["1.0", "2.0"]
    assert settings.mark_stale(repo.db, world.mirror.id) == 1
    page(client, "demo-pkg")
    assert fake.log.requests("/simple/demo-pkg/")[-1].status == 304
    upload(client, world, "acme-x")
    with pytest.raises(Invalid, match="'acme-x' is private in channel 'ch'"):
        mirror_pypi.refresh(app, channel, "acme-x")
