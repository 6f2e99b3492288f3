"""A channel mirroring a CRAN-like upstream, through the app: indexes fetched once per TTL and
revalidated (mirror.md R28), merged with the channel's own packages, every field verbatim
(R27), private and reserved names never from upstream (R23), binary trees on first request,
files with the Archive/ fallback and MD5sum (R29), archive.rds merged, the upstream down with
and without a copy (R6, R8, R26); against a small CRAN-like tree served on 127.0.0.1."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import os
import socket
import threading
from calendar import timegm
from datetime import timedelta
from time import strptime

import pytest

from repo.cran import cache, index, rds
from repo.mirror import fetch, settings

from ..e2e.live import rscript
from .builders import r_form, r_source_of, send, token_auth
from .test_mirror_upstream import Clock

SRC = "/api/repo/mir/cran/src/contrib"
WINDOWS = "/api/repo/mir/cran/bin/windows/contrib/4.2"
TTL = 3600


class Tree(http.server.BaseHTTPRequestHandler):
    """A static CRAN-like tree with ETags and 304s, statuses the test sets, every request
    recorded; a connection per request, so that a stopped tree refuses the next one."""

    server: Upstream

    def do_GET(self):  # noqa: N802 - http.server's name
        upstream = self.server
        upstream.seen.append((self.path, dict(self.headers)))
        body = upstream.tree.get(self.path)
        status = upstream.statuses.get(self.path, 200 if body is not None else 404)
        etag = f'"{hashlib.sha256(body or b"").hexdigest()[:16]}"'
        if status == 200 and self.headers.get("If-None-Match") == etag:
            status, body = 304, b""
        self.send_response(status)
        if status in (200, 304):
            self.send_header("ETag", etag)
        body = body if status == 200 else b""
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Upstream(http.server.ThreadingHTTPServer):
    def __init__(self):
        super().__init__(("127.0.0.1", 0), Tree)
        self.tree: dict[str, bytes] = {}
        self.statuses: dict[str, int] = {}
        self.seen: list[tuple[str, dict]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}/"
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self):
        self.shutdown()
        self.server_close()

    def asked(self, path: str) -> list[dict]:
        """The headers of every request for `path`."""
        return [headers for seen, headers in self.seen if seen == path]

    def publish(self, subdir: str, *packages: tuple[str, str, dict], gz: bool = True) -> bytes:
        """Files `<pkg>_<ver>.tar.gz` (or .zip in a windows tree) and the PACKAGES that
        write_PACKAGES would write for them, as (package, version, other fields); returns it."""
        entries = []
        extension = ".zip" if "windows" in subdir else ".tar.gz"
        for package, version, fields in packages:
            content = f"{package} {version}".encode()
            self.tree[f"/{subdir}/{package}_{version}{extension}"] = content
            md5 = {"MD5sum": hashlib.md5(content).hexdigest()} if extension != ".zip" else {}
            entries.append(index.Entry({"Package": package, "Version": version, **md5,
                                        **fields}))  # fmt: skip
        text = index.build(entries, binary=subdir != "src/contrib").packages
        self.tree.pop(f"/{subdir}/PACKAGES.gz", None)
        self.tree[f"/{subdir}/PACKAGES.gz" if gz else f"/{subdir}/PACKAGES"] = (
            gzip.compress(text) if gz else text
        )
        return text

    def archive(self, package: str, version: str) -> None:
        """Move a version to Archive/<pkg>/, as CRAN does on a new release."""
        name = f"{package}_{version}.tar.gz"
        self.tree[f"/src/contrib/Archive/{package}/{name}"] = self.tree.pop(f"/src/contrib/{name}")


@pytest.fixture
def upstream():
    server = Upstream()
    yield server
    server.stop()


@pytest.fixture
def clock(app):
    app.config["CLOCK"] = clock = Clock()
    yield clock
    if "upstream_client" in app.extensions:
        app.extensions["upstream_client"][1].close()


@pytest.fixture
def channel(repo):
    """The public channel 'mir' and the Basic header of a write token for it."""
    made = repo.owner_with_channel("alice", "mir", public=True)
    made.auth = token_auth(repo.token(made.user_id, made.channel_id, "write"))
    return made


@pytest.fixture
def mirrored(repo, channel, upstream, clock):
    """'mir' mirrors the upstream (TTL 1 h), which has abc 1.0 and xyz 2.0."""
    upstream.publish("src/contrib", ("abc", "1.0", {"Depends": "R (>= 3.5.0)"}),
                     ("xyz", "2.0", {"NeedsCompilation": "no"}))  # fmt: skip
    settings.create(repo.db, channel.channel_id, "cran", upstream.url, ttl=timedelta(hours=1))
    return channel


def get(client, path: str, **headers):
    return send(client, "GET", path, headers=headers)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def upload(client, channel, package: str, version: str):
    content, name = r_source_of(package, version)
    response = send(client, "POST", "/api/repo/mir", data=r_form(content, name),
                    headers=channel.auth)  # fmt: skip
    assert response.status_code == 200, response.get_data()


def test_the_index_is_fetched_once_within_the_ttl(client, mirrored, upstream, clock):
    answers = [get(client, f"{SRC}/{name}") for name in ("PACKAGES.rds", "PACKAGES.gz",
                                                         "PACKAGES", "PACKAGES")]  # fmt: skip
    clock.now += TTL - 1
    answers.append(get(client, f"{SRC}/PACKAGES"))

    assert [answer.status_code for answer in answers] == [200] * 5
    assert b"Package: abc\nVersion: 1.0\n" in answers[-1].get_data()
    assert len(upstream.asked("/src/contrib/PACKAGES.gz")) == 1


def test_after_the_ttl_the_index_is_revalidated_with_its_etag(client, mirrored, upstream, clock):
    first = get(client, f"{SRC}/PACKAGES")
    clock.now += TTL + 1

    again = get(client, f"{SRC}/PACKAGES", **{"If-None-Match": first.headers["ETag"]})
    get(client, f"{SRC}/PACKAGES")

    etag = f'"{hashlib.sha256(upstream.tree["/src/contrib/PACKAGES.gz"]).hexdigest()[:16]}"'
    asked = upstream.asked("/src/contrib/PACKAGES.gz")
    assert [headers.get("If-None-Match") for headers in asked] == [None, etag]
    assert again.status_code == 304


def test_a_new_upstream_version_shows_after_the_ttl(client, mirrored, upstream, clock):
    before = get(client, f"{SRC}/PACKAGES")
    upstream.publish("src/contrib", ("abc", "1.1", {}), ("xyz", "2.0", {"NeedsCompilation": "no"}))
    within = get(client, f"{SRC}/PACKAGES")
    clock.now += TTL + 1

    after = get(client, f"{SRC}/PACKAGES")

    assert within.get_data() == before.get_data()
    assert b"Package: abc\nVersion: 1.1\n" in after.get_data()
    assert after.headers["ETag"] != before.headers["ETag"]


def test_upstream_fields_are_kept_verbatim(client, repo, mirrored, upstream, clock):
    fields = {"Priority": "recommended", "OS_type": "unix", "Archs": "x64",
              "License": "Proprietary", "License_is_FOSS": "no", "License_restricts_use": "yes",
              "Depends": "R (>= 4.0.0), " + ", ".join(f"dependency{i} (>= 1.0.{i})"
                                                     for i in range(12)),
              "NeedsCompilation": "yes"}  # fmt: skip
    text = upstream.publish("src/contrib", ("abc", "1.0", fields), ("zz.top", "0.1-2", {}))
    record = gzip.decompress(upstream.tree["/src/contrib/PACKAGES.gz"])
    upstream.tree["/src/contrib/PACKAGES.gz"] = gzip.compress(
        record.replace(b"Package: zz.top\n", b"Package: zz.top\nTitle: Not standard\n")
    )

    plain = get(client, f"{SRC}/PACKAGES").get_data()
    packed = get(client, f"{SRC}/PACKAGES.gz").get_data()

    assert plain == text  # what write_PACKAGES writes, the long Depends folded as R folds it
    assert gzip.decompress(packed) == plain
    kept = repo.db.execute("SELECT fields FROM mirror_files WHERE project = 'zz.top'").fetchone()
    assert json.loads(kept[0])["Title"] == "Not standard"


def test_a_private_package_replaces_the_upstream_row(client, mirrored, upstream, clock):
    upstream.publish("src/contrib", ("abc", "99.0", {}), ("xyz", "2.0", {}))
    upload(client, mirrored, "abc", "0.5")

    plain = get(client, f"{SRC}/PACKAGES").get_data()
    upstream_file = get(client, f"{SRC}/abc_99.0.tar.gz")

    assert b"Package: abc\nVersion: 0.5\n" in plain
    assert b"99.0" not in plain
    assert b"Package: xyz\nVersion: 2.0\n" in plain
    assert upstream_file.status_code == 404
    assert not [path for path, _ in upstream.seen if "abc_" in path]


def test_a_reserved_name_never_appears_in_any_tree(client, repo, mirrored, upstream, clock):
    settings.add_rule(repo.db, mirrored.channel_id, "cran", "acme*", "reserve")
    upstream.publish("src/contrib", ("acme.x", "1.0", {}), ("xyz", "2.0", {}))
    upstream.publish("bin/windows/contrib/4.2", ("acme.x", "1.0", {}), ("xyz", "2.0", {}))

    source = get(client, f"{SRC}/PACKAGES").get_data()
    binary = get(client, f"{WINDOWS}/PACKAGES").get_data()
    file = get(client, f"{SRC}/acme.x_1.0.tar.gz")

    assert b"acme" not in source and b"acme" not in binary
    assert b"Package: xyz\n" in source and b"Package: xyz\n" in binary
    assert file.status_code == 404
    assert not [path for path, _ in upstream.seen if "acme.x_" in path]


def test_a_binary_tree_is_fetched_when_first_asked_for(client, mirrored, upstream, clock):
    upstream.publish("bin/windows/contrib/4.2", ("abc", "1.0", {}))
    get(client, f"{SRC}/PACKAGES")
    assert not [path for path, _ in upstream.seen if path.startswith("/bin/")]

    listed = get(client, f"{WINDOWS}/PACKAGES")
    zipped = get(client, f"{WINDOWS}/abc_1.0.zip")

    assert listed.get_data() == b"Package: abc\nVersion: 1.0\n"
    assert zipped.get_data() == b"abc 1.0"


def test_an_upstream_404_for_a_binary_tree_is_an_empty_index(client, app, mirrored, upstream,
                                                             clock):  # fmt: skip
    url = "/api/repo/mir/cran/bin/macosx/big-sur-arm64/contrib/4.4"
    answers = [get(client, f"{url}/{name}") for name in ("PACKAGES.rds", "PACKAGES.gz",
                                                         "PACKAGES")]  # fmt: skip

    assert [answer.status_code for answer in answers] == [200] * 3
    assert gzip.decompress(answers[1].get_data()) == answers[2].get_data() == b""
    asked = [path for path, _ in upstream.seen if path.startswith("/bin/")]
    assert asked == ["/bin/macosx/big-sur-arm64/contrib/4.4/PACKAGES.gz",
                     "/bin/macosx/big-sur-arm64/contrib/4.4/PACKAGES"]  # fmt: skip
    assert not list(cache.root(app.config["DATA_DIR"]).rglob("macosx"))  # kept in memory


def test_without_packages_gz_the_plain_index_is_read(client, repo, channel, upstream, clock):
    text = upstream.publish("src/contrib", ("abc", "1.0", {}), gz=False)
    settings.create(repo.db, channel.channel_id, "cran", upstream.url)

    served = get(client, f"{SRC}/PACKAGES.gz")

    assert gzip.decompress(served.get_data()) == text
    assert [path for path, _ in upstream.seen] == ["/src/contrib/PACKAGES.gz",
                                                   "/src/contrib/PACKAGES"]  # fmt: skip


def test_a_row_with_a_path_is_served_beside_the_others(client, mirrored, upstream, clock):
    text = upstream.publish("src/contrib", ("abc", "1.0", {}))
    upstream.archive("abc", "1.0")
    upstream.tree["/src/contrib/PACKAGES.gz"] = gzip.compress(text + b"Path: Archive/abc\n")

    listed = get(client, f"{SRC}/PACKAGES").get_data()
    file = get(client, f"{SRC}/abc_1.0.tar.gz")

    assert listed == text  # write_PACKAGES' own fields; the file is served at contrib/<file>
    assert file.get_data() == b"abc 1.0"
    assert [path for path, _ in upstream.seen if "abc_" in path] == [
        "/src/contrib/Archive/abc/abc_1.0.tar.gz"]  # fmt: skip


def test_a_file_is_fetched_once_and_served_from_the_cache(client, mirrored, upstream, clock):
    first = get(client, f"{SRC}/abc_1.0.tar.gz")
    again = get(client, f"{SRC}/abc_1.0.tar.gz")

    assert first.get_data() == again.get_data() == b"abc 1.0"
    assert len(upstream.asked("/src/contrib/abc_1.0.tar.gz")) == 1
    assert again.headers["Cache-Control"] == "private, max-age=31536000, immutable"


def test_a_file_whose_md5sum_differs_is_not_cached(client, mirrored, upstream, clock, app):
    get(client, f"{SRC}/PACKAGES")
    upstream.tree["/src/contrib/abc_1.0.tar.gz"] = b"abc 6.6"  # same length, other bytes

    with pytest.raises(fetch.BrokenTransfer, match="md5"):
        get(client, f"{SRC}/abc_1.0.tar.gz")
    upstream.tree["/src/contrib/abc_1.0.tar.gz"] = b"abc 1.0"
    fixed = get(client, f"{SRC}/abc_1.0.tar.gz")

    assert fixed.get_data() == b"abc 1.0"
    assert len(upstream.asked("/src/contrib/abc_1.0.tar.gz")) == 2


def test_an_archived_version_is_fetched_from_archive(client, mirrored, upstream, clock):
    get(client, f"{SRC}/PACKAGES")
    upstream.publish("src/contrib", ("abc", "1.1", {}), ("xyz", "2.0", {"NeedsCompilation": "no"}))
    upstream.archive("abc", "1.0")

    old = get(client, f"{SRC}/abc_1.0.tar.gz")

    assert old.get_data() == b"abc 1.0"
    assert [path for path, _ in upstream.seen if "abc_1.0" in path] == [
        "/src/contrib/abc_1.0.tar.gz", "/src/contrib/Archive/abc/abc_1.0.tar.gz"]  # fmt: skip


def test_a_cached_version_stays_at_both_paths_once_archived(client, mirrored, upstream, clock):
    assert get(client, f"{SRC}/abc_1.0.tar.gz").status_code == 200
    upstream.publish("src/contrib", ("abc", "1.1", {}))
    upstream.archive("abc", "1.0")
    clock.now += TTL + 1
    assert b"Version: 1.1" in get(client, f"{SRC}/PACKAGES").get_data()
    asked = len(upstream.seen)

    flat = get(client, f"{SRC}/abc_1.0.tar.gz")
    archived = get(client, f"{SRC}/Archive/abc/abc_1.0.tar.gz")

    assert flat.get_data() == archived.get_data() == b"abc 1.0"
    assert len(upstream.seen) == asked


def test_archive_rds_merges_upstreams_with_the_channels_own(client, repo, mirrored, upstream,
                                                            clock):  # fmt: skip
    upstream.tree["/src/contrib/Meta/archive.rds"] = rds.archive_index({
        "abc": [("abc/abc_0.9.tar.gz", 7, 1_600_000_000.0)],
        "mine": [("mine/mine_0.1.tar.gz", 8, 1_500_000_000.0)],  # the channel's own name
    })  # fmt: skip
    upstream.tree["/src/contrib/Archive/abc/abc_0.9.tar.gz"] = b"abc 0.9"
    upload(client, mirrored, "mine", "0.5")
    upload(client, mirrored, "mine", "1.0")
    own = repo.db.execute("SELECT size, uploaded FROM files WHERE version = '0.5'").fetchone()
    mtime = own["uploaded"]

    served = get(client, f"{SRC}/Meta/archive.rds").get_data()
    old = get(client, f"{SRC}/Archive/abc/abc_0.9.tar.gz")
    hidden = get(client, f"{SRC}/Archive/mine/mine_0.1.tar.gz")

    expected = rds.archive_index({
        "abc": [("abc/abc_0.9.tar.gz", 7, 1_600_000_000.0)],
        "mine": [("mine/mine_0.5.tar.gz", own["size"],
                  float(timegm(strptime(mtime[:19], "%Y-%m-%dT%H:%M:%S"))))],
    })  # fmt: skip
    assert served == expected
    assert old.get_data() == b"abc 0.9"
    assert hidden.status_code == 404
    assert not upstream.asked("/src/contrib/Archive/mine/mine_0.1.tar.gz")


# Meta/archive.rds as CRAN makes it (a named list of file.info() frames), saved the ways R can.
ARCHIVE_R = """
root <- "{root}"
archive <- file.path(root, "Archive")
packages <- list.files(archive)
db <- setNames(lapply(packages, function(p) {{
  files <- list.files(file.path(archive, p), full.names = TRUE)
  rows <- file.info(files)
  rownames(rows) <- file.path(p, basename(files))
  rows
}}), packages)
saveRDS(db, file.path(root, "gzip-3.rds"))
saveRDS(db, file.path(root, "xz-3.rds"), compress = "xz")
saveRDS(db, file.path(root, "bzip2-2.rds"), compress = "bzip2", version = 2)
"""
# (row name, size, mtime) of each archived file; R lists abc_0.10 before abc_0.9.
ARCHIVED = {
    "abc": [("abc/abc_0.9.tar.gz", 7, 1_600_000_000), ("abc/abc_0.10.tar.gz", 8, 1_600_100_000)],
    "z.pkg": [("z.pkg/z.pkg_1.0-1.tar.gz", 3, 1_500_000_000)],
}


@pytest.fixture(scope="session")
def r_archives(tmp_path_factory) -> dict[str, bytes]:
    """archive.rds of ARCHIVED written by real R: gzip and xz (format 3), bzip2 (format 2)."""
    root = tmp_path_factory.mktemp("archive")
    for rows in ARCHIVED.values():
        for name, size, mtime in rows:
            (root / "Archive" / name).parent.mkdir(parents=True, exist_ok=True)
            (root / "Archive" / name).write_bytes(b"x" * size)
            os.utime(root / "Archive" / name, (mtime, mtime))
    result = rscript(ARCHIVE_R.format(root=root), {"PATH": os.environ["PATH"], "HOME": str(root)})
    assert result.returncode == 0, result.stderr
    return {name: (root / f"{name}.rds").read_bytes() for name in ("gzip-3", "xz-3", "bzip2-2")}


@pytest.mark.parametrize("form", ["gzip-3", "xz-3", "bzip2-2"])
def test_archive_rds_as_r_writes_it_is_read(client, mirrored, upstream, clock, r_archives,
                                            form):  # fmt: skip
    upstream.tree["/src/contrib/Meta/archive.rds"] = r_archives[form]

    served = get(client, f"{SRC}/Meta/archive.rds").get_data()

    assert served == rds.archive_index(
        {package: [(name, size, float(mtime)) for name, size, mtime in rows]
         for package, rows in ARCHIVED.items()}
    )  # fmt: skip


def test_upstream_down_with_a_copy_lists_the_files_held(client, mirrored, upstream, clock):
    assert get(client, f"{SRC}/abc_1.0.tar.gz").status_code == 200
    upstream.stop()
    clock.now += TTL + 1

    down = get(client, f"{SRC}/PACKAGES")
    file = get(client, f"{SRC}/abc_1.0.tar.gz")

    assert down.status_code == 200
    assert down.headers["X-Repo-Cache"] == "stale; upstream=down"
    assert b"Package: abc\n" in down.get_data()
    assert b"Package: xyz\n" not in down.get_data()  # not held: R would fail to download it
    assert file.get_data() == b"abc 1.0"


def test_upstream_down_without_a_copy_is_503(client, repo, channel, clock):
    settings.create(repo.db, channel.channel_id, "cran", f"http://127.0.0.1:{closed_port()}/")

    response = get(client, f"{SRC}/PACKAGES.rds")

    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert "unavailable" in response.get_data(as_text=True)


def test_upstream_down_still_lists_the_channels_own(client, repo, channel, clock):
    upload(client, channel, "mine", "1.0")
    settings.create(repo.db, channel.channel_id, "cran", f"http://127.0.0.1:{closed_port()}/")

    response = get(client, f"{SRC}/PACKAGES")

    assert response.status_code == 200
    assert response.get_data().startswith(b"Package: mine\nVersion: 1.0\n")
    assert response.headers["X-Repo-Cache"] == "stale; upstream=down"
