"""Mirror files through the app: streamed on first request while stored (mirror.md R12),
verified before they are cached (R14), fetched once for many clients (R13), served like
uploads once cached (R15), `.metadata` verified (R19), quarantine (R20), upstream down (R6),
against a small file server on 127.0.0.1 and mirror_files rows made here."""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from repo.db import open_connection, transaction
from repo.mirror import fetch, lease, settings

from .builders import send

FLIP = bytes(range(255, -1, -1))
BODY = bytes(range(256)) * 1024  # 256 KiB
WHEEL = "demo-1.0-py3-none-any.whl"
METADATA = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"


class Files(http.server.BaseHTTPRequestHandler):
    """An upstream's file host: the first half of a body, then (once its gate, if any, is
    set) the rest; faults as the test sets them; every request recorded."""

    protocol_version = "HTTP/1.1"
    server: FileServer

    def do_GET(self):  # noqa: N802 - http.server's name
        upstream = self.server
        upstream.seen.append((self.command, self.path, dict(self.headers)))
        body = upstream.files.get(self.path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path in upstream.wrong:
            body = body.translate(FLIP)
        self.send_response(200)
        for name, value in upstream.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        half = len(body) // 2
        self.wfile.write(body[:half])
        self.wfile.flush()
        if self.path in upstream.gates:
            upstream.gates[self.path].wait(10)
        if self.path in upstream.short:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body[half:])

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


class FileServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Files)
        self.files: dict[str, bytes] = {}
        self.wrong: set[str] = set()  # the same length, other bytes
        self.short: set[str] = set()  # the connection closes after the first half
        self.gates: dict[str, threading.Event] = {}
        self.headers: dict[str, str] = {}
        self.seen: list[tuple[str, str, dict]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request, client_address):
        """A client that went away (the mirror refusing what it was sent) is no error here."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def gets(self, path: str) -> int:
        return sum(1 for method, seen, _ in self.seen if method == "GET" and seen == path)


@pytest.fixture
def upstream():
    server = FileServer()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    for gate in server.gates.values():
        gate.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def mirror(app, repo, upstream):
    made = repo.owner_with_channel("alice", "ch", public=True)
    yield settings.create(repo.db, made.channel_id, "pypi", upstream.url + "/simple/")
    if "upstream_client" in app.extensions:
        app.extensions["upstream_client"][1].close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listed(db, mirror, upstream, filename: str = WHEEL, body: bytes = BODY, **columns):
    """A mirror_files row as an upstream page makes it, and the file on the upstream."""
    path = f"/packages/{filename}"
    upstream.files[path] = body
    values = {"mirror_id": mirror.id, "project": "demo", "filename": filename,
              "version": "1.0", "url": upstream.url + path,
              "sha256": hashlib.sha256(body).hexdigest(), "size": len(body), **columns}  # fmt: skip
    with transaction(db):
        db.execute(f"INSERT INTO mirror_files ({', '.join(values)}) VALUES"
                   f" ({', '.join('?' * len(values))})", tuple(values.values()))  # fmt: skip
    return row_of(db, filename)


def row_of(db, filename: str = WHEEL):
    return db.execute("SELECT * FROM mirror_files WHERE filename = ?", (filename,)).fetchone()


def url_of(row, suffix: str = "") -> str:
    return f"/api/repo/ch/files/{row['sha256']}/{row['filename']}{suffix}"


def received(response) -> tuple[bytes, BaseException | None]:
    """What a client got of a streamed body, and the error that broke the transfer."""
    pieces = []
    try:
        for piece in response.response:
            pieces.append(piece)
    except fetch.BrokenTransfer as error:
        return b"".join(pieces), error
    finally:
        response.close()
    return b"".join(pieces), None


def stored(app) -> tuple[set[str], list[Path]]:
    """The blobs in the store, and whatever is left in its tmp/."""
    store = app.extensions["blobs"]
    return {blob.sha256 for blob in store.listing()}, list(store.tmp_dir.iterdir())


def test_first_request_streams_before_the_upstream_has_sent_everything(
    app, client, repo, mirror, upstream
):
    row = listed(repo.db, mirror, upstream)
    gate = upstream.gates[f"/packages/{WHEEL}"] = threading.Event()

    response = client.get(url_of(row))  # the test client reads the first piece
    first = next(iter(response.response))

    assert not gate.is_set()
    assert 0 < len(first) < len(BODY) and BODY.startswith(first)
    assert response.headers["Content-Length"] == str(len(BODY))
    gate.set()
    rest, error = received(response)
    assert error is None and first + rest == BODY
    assert row_of(repo.db)["blob_sha256"] == hashlib.sha256(BODY).hexdigest()
    assert stored(app) == ({row["sha256"]}, [])


def test_a_cached_file_is_served_from_its_blob_as_uploads_are(client, repo, mirror, upstream):
    row = listed(repo.db, mirror, upstream)
    assert send(client, "GET", url_of(row)).data == BODY

    cached = send(client, "GET", url_of(row), headers={"Range": "bytes=0-9"})
    again = send(client, "GET", url_of(row), headers={"If-None-Match": f'"{row["sha256"]}"'})

    assert cached.status_code == 206 and cached.data == BODY[:10]
    assert cached.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    assert again.status_code == 304
    assert upstream.gets(f"/packages/{WHEEL}") == 1


@pytest.mark.parametrize("fault", ["wrong", "short"])
def test_a_bad_body_breaks_the_transfer_and_caches_nothing(
    app, client, repo, mirror, upstream, fault
):
    row = listed(repo.db, mirror, upstream)
    getattr(upstream, fault).add(f"/packages/{WHEEL}")

    got, error = received(client.get(url_of(row)))

    assert isinstance(error, fetch.BrokenTransfer)
    assert len(got) < len(BODY)
    assert stored(app) == (set(), [])
    assert dict(row_of(repo.db)) == dict(row)
    assert lease.held(repo.db, f"file:{mirror.id}:/{WHEEL}") is None


def test_the_request_after_a_bad_body_fetches_again(client, repo, mirror, upstream):
    row = listed(repo.db, mirror, upstream)
    upstream.wrong.add(f"/packages/{WHEEL}")
    received(client.get(url_of(row)))
    upstream.wrong.clear()

    got, error = received(client.get(url_of(row)))

    assert error is None and got == BODY
    assert upstream.gets(f"/packages/{WHEEL}") == 2
    assert row_of(repo.db)["blob_sha256"] == row["sha256"]


def test_an_upstream_size_other_than_the_index_says_is_a_502(app, client, repo, mirror, upstream):
    row = listed(repo.db, mirror, upstream, size=len(BODY) + 1)

    response = client.get(url_of(row))

    assert response.status_code == 502
    assert f"upstream sends {len(BODY)} bytes" in response.text
    assert stored(app) == (set(), [])


def test_head_of_an_uncached_file_answers_from_its_size_without_fetching(
    app, client, repo, mirror, upstream
):
    row = listed(repo.db, mirror, upstream)

    response = client.head(url_of(row))

    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(BODY))
    assert upstream.seen == []
    assert stored(app) == (set(), [])


def test_many_clients_at_once_cause_one_upstream_get_and_get_the_same_bytes(
    app, repo, mirror, upstream
):
    row = listed(repo.db, mirror, upstream)
    gate = upstream.gates[f"/packages/{WHEEL}"] = threading.Event()
    leader = app.test_client().get(url_of(row))  # holds the lease, half the file received
    bodies, tailing = [], threading.Semaphore(0)

    def follow():
        response = app.test_client().get(url_of(row))
        tailing.release()
        bodies.append(received(response))

    followers = [threading.Thread(target=follow) for _ in range(6)]
    for thread in followers:
        thread.start()
    for _ in followers:
        assert tailing.acquire(timeout=10)  # every follower has its headers and first bytes
    gate.set()
    bodies.append(received(leader))
    for thread in followers:
        thread.join(10)

    assert bodies == [(BODY, None)] * 7
    assert upstream.gets(f"/packages/{WHEEL}") == 1


def test_followers_break_too_when_the_leaders_fetch_fails(app, repo, mirror, upstream):
    row = listed(repo.db, mirror, upstream)
    upstream.wrong.add(f"/packages/{WHEEL}")
    upstream.gates[f"/packages/{WHEEL}"] = gate = threading.Event()
    leader = app.test_client().get(url_of(row))
    follower = app.test_client().get(url_of(row))
    gate.set()

    (_, leader_error), (got, follower_error) = received(leader), received(follower)

    assert isinstance(leader_error, fetch.BrokenTransfer)
    assert isinstance(follower_error, fetch.BrokenTransfer) and len(got) < len(BODY)
    assert upstream.gets(f"/packages/{WHEEL}") == 1
    assert stored(app) == (set(), [])


def dead_leader(db, mirror, path: Path, written: bytes, host: str = socket.gethostname()) -> None:
    """The lease of a worker (on `host`) killed after writing `written`: it renews no more,
    and its term runs out in half a second."""
    path.write_bytes(written)
    with transaction(db):
        db.execute("INSERT INTO mirror_leases VALUES (?, ?, ?, ?)",
                   (f"file:{mirror.id}:/{WHEEL}", f"{host}:1:1", time.time() + 0.5,
                    str(path)))  # fmt: skip


def test_a_dead_leaders_followers_break_and_the_next_request_fetches(
    client, repo, mirror, upstream, tmp_path
):
    row = listed(repo.db, mirror, upstream)
    dead_leader(repo.db, mirror, tmp_path / "pending", BODY[:1000])

    got, error = received(client.get(url_of(row)))
    after = send(client, "GET", url_of(row))

    assert isinstance(error, fetch.BrokenTransfer) and got == BODY[:999]
    assert after.data == BODY
    assert upstream.gets(f"/packages/{WHEEL}") == 1


def test_a_leader_on_another_server_is_waited_for_and_never_tailed(
    client, repo, mirror, upstream, tmp_path
):
    row = listed(repo.db, mirror, upstream)
    # Its path names a file on its own host: the one here of that name is not it.
    dead_leader(repo.db, mirror, tmp_path / "pending", BODY[:1000], host="elsewhere")

    got, error = received(client.get(url_of(row)))

    assert (got, error) == (BODY, None)
    assert upstream.gets(f"/packages/{WHEEL}") == 1


def test_a_request_whose_leader_died_before_any_byte_fetches_the_file_itself(
    client, repo, mirror, upstream, tmp_path
):
    row = listed(repo.db, mirror, upstream)
    dead_leader(repo.db, mirror, tmp_path / "pending", b"")

    got = received(client.get(url_of(row)))

    assert got == (BODY, None)
    assert upstream.gets(f"/packages/{WHEEL}") == 1


def test_a_leader_whose_client_went_away_still_caches_the_file(app, client, repo, mirror, upstream):
    row = listed(repo.db, mirror, upstream)
    upstream.gates[f"/packages/{WHEEL}"] = gate = threading.Event()
    response = client.get(url_of(row))
    gate.set()

    response.close()

    assert row_of(repo.db)["blob_sha256"] == row["sha256"]
    assert stored(app) == ({row["sha256"]}, [])


def test_the_bytes_are_taken_as_stored_whatever_content_encoding_upstream_claims(
    client, repo, mirror, upstream
):
    row = listed(repo.db, mirror, upstream, filename="demo-1.0.tar.gz")
    upstream.headers["Content-Encoding"] = "gzip"

    response = send(client, "GET", url_of(row))

    assert response.data == BODY and "Content-Encoding" not in response.headers
    assert upstream.seen[0][2]["Accept-Encoding"] == "identity"


def test_a_download_is_recorded_at_most_once_a_minute(client, repo, mirror, upstream):
    row = listed(repo.db, mirror, upstream)
    send(client, "GET", url_of(row))
    first = row_of(repo.db)["last_download"]

    send(client, "GET", url_of(row))

    assert first is not None and row_of(repo.db)["last_download"] == first


def test_an_upstream_that_is_down_makes_an_uncached_file_503(client, repo, mirror, upstream):
    cached = listed(repo.db, mirror, upstream)
    send(client, "GET", url_of(cached))
    uncached = listed(repo.db, mirror, upstream, filename="demo-1.0.tar.gz", body=b"sdist",
                      url=f"http://127.0.0.1:{closed_port()}/packages/demo-1.0.tar.gz")  # fmt: skip

    down = client.get(url_of(uncached))
    asked_again = client.get(url_of(uncached))

    assert down.status_code == 503 and int(down.headers["Retry-After"]) > 0
    assert "is unavailable" in down.text and "'demo-1.0.tar.gz' is not cached here" in down.text
    assert asked_again.status_code == 503  # the breaker answers: no upstream connection
    assert send(client, "GET", url_of(cached)).data == BODY


def test_an_upstream_404_is_a_404(client, repo, mirror, upstream):
    row = listed(repo.db, mirror, upstream)
    del upstream.files[f"/packages/{WHEEL}"]

    response = client.get(url_of(row))

    assert response.status_code == 404 and "not found upstream" in response.text


def test_a_quarantined_projects_cached_files_answer_404(client, repo, mirror, upstream):
    row = listed(repo.db, mirror, upstream)
    send(client, "GET", url_of(row))
    with transaction(repo.db):
        repo.db.execute("INSERT INTO mirror_pages (mirror_id, key, state, checked, changed,"
                        " status) VALUES (?, 'demo', 'found', 0, '', 'quarantined')",
                        (mirror.id,))  # fmt: skip

    response = client.get(url_of(row))

    assert response.status_code == 404 and "quarantined" in response.text


def test_a_reserved_name_is_never_fetched(client, repo, mirror, upstream):
    row = listed(repo.db, mirror, upstream)
    settings.add_rule(repo.db, mirror.channel_id, "pypi", "demo", "reserve")

    response = client.get(url_of(row))

    assert response.status_code == 404
    assert upstream.seen == []


@pytest.mark.parametrize(
    "advertised",
    [json.dumps({"sha256": hashlib.sha256(METADATA).hexdigest()}),
     f"sha256={hashlib.sha256(METADATA).hexdigest()}", "true"],
)  # fmt: skip
def test_metadata_is_fetched_once_verified_and_stored(
    app, client, repo, mirror, upstream, advertised
):
    row = listed(repo.db, mirror, upstream, core_metadata=advertised)
    upstream.files[f"/packages/{WHEEL}.metadata"] = METADATA

    first, second = (send(client, "GET", url_of(row, ".metadata")) for _ in range(2))

    assert first.data == second.data == METADATA
    assert row_of(repo.db)["metadata_blob"] == hashlib.sha256(METADATA).hexdigest()
    assert upstream.gets(f"/packages/{WHEEL}.metadata") == 1
    assert upstream.gets(f"/packages/{WHEEL}") == 0


def test_metadata_with_another_hash_is_never_served(app, client, repo, mirror, upstream):
    advertised = json.dumps({"sha256": hashlib.sha256(METADATA).hexdigest()})
    row = listed(repo.db, mirror, upstream, core_metadata=advertised)
    upstream.files[f"/packages/{WHEEL}.metadata"] = METADATA + b"Summary: other\n"

    response = client.get(url_of(row, ".metadata"))

    assert response.status_code == 502 and "another sha256" in response.text
    assert row_of(repo.db)["metadata_blob"] is None
    assert stored(app) == (set(), [])


def test_metadata_upstream_does_not_offer_is_404(client, repo, mirror, upstream):
    row = listed(repo.db, mirror, upstream)

    assert client.get(url_of(row, ".metadata")).status_code == 404
    assert upstream.seen == []


def serve(app, mirror, row, **options) -> tuple[bytes, BaseException | None]:
    """fetch.serve as the CRAN side calls it for one of its rows."""
    db = open_connection(app)
    try:
        with app.test_request_context("/api/repo/ch/cran/src/contrib/x"):
            response = fetch.serve(app, db, mirror, row, **options)
        return received(response)
    finally:
        db.close()


def test_an_md5_only_row_is_checked_by_md5(app, repo, mirror, upstream):
    good = listed(repo.db, mirror, upstream, filename="abc_1.0.tar.gz", sha256=None, size=None,
                  md5=hashlib.md5(BODY).hexdigest())  # fmt: skip
    bad = listed(repo.db, mirror, upstream, filename="abd_1.0.tar.gz", sha256=None, size=None,
                 md5=hashlib.md5(b"other").hexdigest())  # fmt: skip

    assert serve(app, mirror, good) == (BODY, None)
    got, error = serve(app, mirror, bad)

    assert isinstance(error, fetch.BrokenTransfer) and len(got) < len(BODY)
    assert row_of(repo.db, "abc_1.0.tar.gz")["blob_sha256"] == hashlib.sha256(BODY).hexdigest()
    assert row_of(repo.db, "abd_1.0.tar.gz")["blob_sha256"] is None


def test_fallback_urls_are_tried_when_upstream_says_404(app, repo, mirror, upstream):
    row = listed(repo.db, mirror, upstream, filename="abc_1.0.tar.gz")
    upstream.files["/Archive/abc/abc_1.0.tar.gz"] = upstream.files.pop("/packages/abc_1.0.tar.gz")

    got = serve(app, mirror, row, fallbacks=[upstream.url + "/Archive/abc/abc_1.0.tar.gz"])

    assert got == (BODY, None)
    assert [path for _, path, _ in upstream.seen] == ["/packages/abc_1.0.tar.gz",
                                                      "/Archive/abc/abc_1.0.tar.gz"]  # fmt: skip
