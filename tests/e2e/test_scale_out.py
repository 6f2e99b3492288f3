"""Two app servers on one PostgreSQL database and one S3 bucket behave as one server: what
is done through A is in force through B at the next request, for pip, uv, R and the web UI;
uploads split over both lose and double nothing; a server killed mid-upload leaves nothing
visible; both restart with everything there. The servers are real gunicorns with data dirs
of their own (one per host, as in production); PostgreSQL and the S3 protocol server are the
scale stack's (tests/stacks), started by the tests on 127.0.0.1. Every server here is given its
storage explicitly, the same on either stack, so the module runs once, in the embedded pass
(embedded_only), not again in the scale pass."""

from __future__ import annotations

import base64
import hashlib
import http.client
import http.server
import json
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

from .. import conftest
from ..stacks.nanio import NanioServer
from . import faults
from .live import (
    ADMIN_PASSWORD,
    LiveServer,
    pip_install,
    rscript,
    run,
    tool,
    twine_upload,
    uv_install,
)

TRUSTED = {"REPO_TRUSTED_PROXIES": "1", "REPO_AUTH_FAILURE_LIMIT": "5"}
pytestmark = pytest.mark.embedded_only


def shared_storage(label: str) -> dict[str, str]:
    """The settings that make servers one: a new database and a new bucket."""
    stack = conftest.STACK
    return {"REPO_DATABASE_URL": stack.postgres.fresh_database(label),
            "REPO_BLOB_URL": stack.s3.fresh_bucket(label), **stack.s3.environ}  # fmt: skip


def start_together(work: Path, names: str, settings: dict[str, str]) -> list[LiveServer]:
    """`repo serve` for each name at the same instant, on the same storage."""
    with ThreadPoolExecutor(len(names)) as pool:
        return list(pool.map(lambda name: LiveServer(work / name, **settings), names))


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Servers A and B, started at the same moment on an empty database and bucket."""
    work = tmp_path_factory.mktemp("pair")
    settings = {**shared_storage("pair"), **TRUSTED}
    a, b = start_together(work, "ab", settings)
    a.cli("user", "create", "alice", "--password", "alice-password")
    b.cli("channel", "create", "team", "--owner", "alice")
    servers = SimpleNamespace(a=a, b=b, work=work, settings=settings)
    yield servers
    for server in (servers.a, servers.b):
        server.stop()


def token(server: LiveServer, *options: str) -> str:
    return server.cli("token", "create", "alice", *options)


def get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def basic(user: str, password: str) -> dict[str, str]:
    secret = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {secret}"}


def simple(server: LiveServer, secret: str, channel: str = "team") -> str:
    return f"http://{secret}:x-auth-token@{server.host}/api/repo/{channel}/simple"


def upload_r(server: LiveServer, secret: str, path: Path, env: dict[str, str]) -> None:
    """curl's upload of an R source package to the channel team, as the README shows it."""
    uploaded = run([tool("curl"), "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                    "-F", "filetype=cran_source_package", "-F", f"content=@{path}",
                    "-H", f"X-Auth: {secret}", f"{server.url}/api/repo/team"], env)  # fmt: skip
    assert uploaded.stdout == "200", uploaded.stderr


def installed_abc(server: LiveServer, secret: str, library: Path, env: dict[str, str]) -> str:
    """R's install.packages("abc") from team through a path token; the version installed."""
    library.mkdir()
    repos = f"{server.url}/api/repo/t/{secret}/team/cran"
    result = rscript(f'install.packages("abc", repos = "{repos}", lib = "{library}",'
                     ' type = "source", quiet = TRUE); cat(as.character(packageVersion("abc",'
                     f' lib.loc = "{library}")))', env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().rsplit("\n", 1)[-1]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def file_link(server: LiveServer, secret: str, project: str, filename: str) -> str:
    """The absolute URL of `filename` as the JSON project page of `project` links it."""
    page = f"{server.url}/api/repo/team/simple/{project}/"
    accept = {"X-Auth": secret, "Accept": "application/vnd.pypi.simple.v1+json"}
    files = json.loads(get(page, accept)[2])["files"]
    return urllib.parse.urljoin(page, next(f["url"] for f in files if f["filename"] == filename))


def test_both_started_at_once_made_one_schema_and_one_admin(pair):
    for server in (pair.a, pair.b):
        assert get(f"{server.url}/healthz")[0] == 200
    assert pair.a.query("SELECT name FROM users WHERE is_admin = 1") == [("admin",)]
    assert len(pair.b.query("SELECT version FROM schema_version")) == 1
    assert "Traceback" not in pair.a.log() + pair.b.log()


def test_an_upload_through_a_installs_through_b_at_once_with_pip_uv_and_r(
    pair, dists, client_env, tmp_path, r_built
):
    secret = token(pair.a, "--channel", "team", "--scope", "write")
    wheel, sdist = dists.build("scaled", "1.0")
    result = twine_upload(f"{pair.a.url}/api/repo/team", [wheel, sdist], client_env, secret,
                          "x-auth-token")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr

    installed = pip_install(client_env, tmp_path / "pip", simple(pair.b, secret), "scaled==1.0")
    assert installed.returncode == 0, installed.stderr
    assert (tmp_path / "pip" / "scaled" / "__init__.py").is_file()
    installed = uv_install(client_env, tmp_path / "uv", simple(pair.b, secret), "scaled==1.0")
    assert installed.returncode == 0, installed.stderr
    assert (tmp_path / "uv" / "scaled" / "__init__.py").is_file()

    upload_r(pair.a, secret, r_built["abc_2.1.tar.gz"], client_env)
    assert installed_abc(pair.b, secret, tmp_path / "rlib", client_env) == "2.1"
    # One copy of each file in the bucket, whichever server took it.
    assert {row[0] for row in pair.a.query("SELECT sha256 FROM files")} <= pair.b.blobs()


def test_a_yank_on_b_is_seen_on_a_and_a_revalidation_on_b_gets_304(pair, dists, client_env):
    secret = token(pair.a, "--channel", "team", "--scope", "write")
    wheel, _ = dists.build("yankable", "1.0")
    assert twine_upload(f"{pair.a.url}/api/repo/team", [wheel], client_env, secret,
                        "x-auth-token").returncode == 0  # fmt: skip
    page = f"{pair.a.url}/api/repo/team/simple/yankable/"
    auth = {"X-Auth": secret, "Accept": "application/vnd.pypi.simple.v1+json"}
    status, headers, body = get(page, auth)
    assert status == 200 and not json.loads(body)["files"][0].get("yanked")
    etag = headers["ETag"]
    # The same revision gives the same strong ETag on the other server: 304 through B.
    b_page = page.replace(pair.a.host, pair.b.host)
    assert get(b_page, {**auth, "If-None-Match": etag})[0] == 304

    pair.b.cli("yank", "team", wheel.name, "--reason", "broken")
    status, headers, body = get(page, {**auth, "If-None-Match": etag})
    assert status == 200 and headers["ETag"] != etag
    assert json.loads(body)["files"][0]["yanked"] == "broken"

    # A delete through B's API: gone from A's page and A's file URL at the next request.
    link = file_link(pair.a, secret, "yankable", wheel.name)
    removal = urllib.request.Request(
        f"{pair.b.url}/api/channels/team/files/{wheel.name}", method="DELETE",
        headers=basic("alice", "alice-password"),
    )  # fmt: skip
    with urllib.request.urlopen(removal, timeout=10) as response:
        assert response.status == 204
    assert get(page, auth)[0] == 404
    assert get(link, {"X-Auth": secret})[0] == 404


def test_revocation_and_a_password_change_on_a_are_in_force_on_b_at_the_next_request(pair):
    secret = token(pair.a, "--channel", "team", "--scope", "read", "--label", "revoke-me")
    page = f"{pair.b.url}/api/repo/team/simple/"
    # Several times: B's workers each keep the token's check (repo/access.py), and the page.
    # (Refusals are fewer: five failures are this client's limit, TRUSTED.)
    assert [get(page, {"X-Auth": secret})[0] for _ in range(6)] == [200] * 6
    listed = json.loads(pair.a.cli("token", "list", "alice", "--json"))
    pair.a.cli("token", "revoke", str(next(t["id"] for t in listed if t["label"] == "revoke-me")))
    assert [get(page, {"X-Auth": secret})[0] for _ in range(3)] == [401] * 3

    pair.a.cli("user", "create", "carol", "--password", "carol-old-password")
    pair.a.cli("channel", "grant", "team", "carol", "--role", "read")
    assert get(page, basic("carol", "carol-old-password"))[0] == 200
    change = urllib.request.Request(
        f"{pair.a.url}/api/users/carol", method="PATCH",
        data=json.dumps({"password": "carol-new-password"}).encode(),
        headers={**basic("admin", ADMIN_PASSWORD), "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(change, timeout=10) as response:
        assert response.status == 200
    assert get(page, basic("carol", "carol-old-password"))[0] == 401
    assert get(page, basic("carol", "carol-new-password"))[0] == 200


def test_a_web_session_signed_in_on_a_works_on_b(pair):
    """The secret key that signs sessions is the database's, not each data dir's."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(f"{pair.a.url}/login", timeout=10) as response:
        form = response.read().decode()
    csrf = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    data = f"name=alice&password=alice-password&csrf_token={csrf}".encode()
    with opener.open(f"{pair.a.url}/login", data=data, timeout=10) as response:
        assert response.status == 200
    # The same cookie, sent to B (a cookie is per host name, not port: the jar sends it).
    with opener.open(f"{pair.b.url}/", timeout=10) as response:
        assert "alice" in response.read().decode()


def test_failed_logins_split_over_a_and_b_are_throttled_by_both(pair):
    client = {"X-Forwarded-For": "203.0.113.9"}
    page = "/api/repo/team/simple/"
    statuses = [get(f"{server.url}{page}", {**client, **basic("alice", "wrong")})[0]
                for server in (pair.a, pair.b) * 3]  # fmt: skip
    assert statuses[:5] == [401] * 5 and statuses[5] == 429, statuses
    assert get(f"{pair.a.url}{page}", {**client, **basic("alice", "wrong")})[0] == 429
    # Another address is not held up.
    assert get(f"{pair.a.url}{page}", basic("alice", "alice-password"))[0] == 200


def test_fifty_uploads_split_over_both_lose_and_double_nothing(pair):
    pair.a.cli("channel", "create", "busy", "--owner", "alice")
    busy = token(pair.a, "--channel", "busy", "--scope", "write")
    uploads = [faults.wheel_upload(f"busy{n}") for n in range(50)]
    twin = faults.wheel_upload("twin")
    work = pair.work / "fifty"
    work.mkdir()
    servers = [pair.a, pair.b]
    clients = [faults.send(f"{servers[n % 2].url}/api/repo/busy", busy, upload, work)
               for n, upload in enumerate(uploads)]  # fmt: skip
    # The same file through A and through B at the same moment.
    clients += [faults.send(f"{server.url}/api/repo/busy", busy, twin, work) for server in servers]
    answers = [faults.answer(client) for client in clients]
    assert [status for status, _ in answers] == [200] * 52, answers

    rows = pair.a.query("SELECT filename, sha256 FROM files JOIN channels ON channels.id ="
                        " files.channel_id WHERE channels.name = 'busy'")  # fmt: skip
    assert sorted(rows) == sorted((u.filename, u.sha256) for u in [*uploads, twin])
    assert pair.b.query("SELECT revision FROM channels WHERE name = 'busy'") == [(51,)]
    assert {u.sha256 for u in [*uploads, twin]} <= pair.a.blobs()


class SlowUpload(threading.Thread):
    """A wheel upload of `size` bytes sent in pieces, paused after `pause_at` bytes until
    `go_on` is set: a client in the middle of its upload when the server dies."""

    def __init__(self, url: str, secret: str, filename: str, size: int, pause_at: int):
        super().__init__(daemon=True)
        self.url, self.secret, self.filename = urllib.parse.urlsplit(url), secret, filename
        self.size, self.pause_at = size, pause_at
        self.paused, self.go_on = threading.Event(), threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        boundary = "scaleoutboundary"
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\":action\"\r\n\r\n"
                f"file_upload\r\n--{boundary}\r\nContent-Disposition: form-data;"
                f" name=\"content\"; filename=\"{self.filename}\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n").encode()  # fmt: skip
        tail = f"\r\n--{boundary}--\r\n".encode()
        connection = http.client.HTTPConnection(self.url.netloc, timeout=30)
        try:
            connection.putrequest("POST", self.url.path)
            connection.putheader("X-Auth", self.secret)
            connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
            connection.putheader("Content-Length", str(len(head) + self.size + len(tail)))
            connection.endheaders()
            connection.send(head)
            piece = b"\0" * (1024 * 1024)
            for sent in range(0, self.size, len(piece)):
                if sent >= self.pause_at and not self.paused.is_set():
                    self.paused.set()
                    self.go_on.wait(30)
                connection.send(piece[: self.size - sent])
            connection.send(tail)
            connection.getresponse()
        except OSError as error:
            self.error = error
        finally:
            connection.close()


def test_a_server_killed_mid_upload_leaves_nothing_and_the_other_serves_on(
    pair, dists, client_env, tmp_path
):
    secret = token(pair.a, "--channel", "team", "--scope", "write")
    victim = LiveServer(pair.work / "victim", **pair.settings)
    before = pair.b.blobs()
    upload = SlowUpload(f"{victim.url}/api/repo/team", secret, "halfway-1.0-py3-none-any.whl",
                        size=50 * 1024 * 1024, pause_at=20 * 1024 * 1024)  # fmt: skip
    upload.start()
    assert upload.paused.wait(30)
    faults.kill(victim)
    upload.go_on.set()
    upload.join(30)
    assert upload.error is not None  # the client saw its connection die

    assert pair.b.query("SELECT count(*) FROM files WHERE filename LIKE 'halfway%'") == [(0,)]
    assert pair.b.blobs() == before
    wheel, _ = dists.build("survivor", "1.0")
    result = twine_upload(f"{pair.b.url}/api/repo/team", [wheel], client_env, secret,
                          "x-auth-token")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    installed = pip_install(client_env, tmp_path / "t", simple(pair.b, secret), "survivor")
    assert installed.returncode == 0, installed.stderr
    # What the dead server left is its own host's temp file; its gc removes it.
    restarted = LiveServer(pair.work / "victim", **pair.settings)
    try:
        assert restarted.pending() != []
        restarted.cli("gc", "--grace", "0")
        assert restarted.pending() == []
    finally:
        restarted.stop()


def test_both_servers_restarted_still_hold_everything(pair, client_env, tmp_path):
    secret = token(pair.a, "--channel", "team", "--scope", "read")
    files = pair.a.query("SELECT filename FROM files ORDER BY filename")
    pair.a.stop()
    pair.b.stop()
    pair.a, pair.b = start_together(pair.work, "ab", pair.settings)
    assert pair.b.query("SELECT filename FROM files ORDER BY filename") == files
    installed = pip_install(client_env, tmp_path / "t", simple(pair.a, secret), "scaled==1.0")
    assert installed.returncode == 0, installed.stderr
    assert get(f"{pair.b.url}/api/repo/team/simple/", basic("admin", ADMIN_PASSWORD))[0] == 200
    report = pair.b.cli("fsck")
    assert "0 missing" in report and "0 corrupt" in report, report


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class StoreDoor(http.server.ThreadingHTTPServer):
    """The store's public address: each GET or HEAD is passed on to the store as it came (its
    Host header too, which the signature covers), and what the client sent is kept: whether
    an Authorization header came along, and the User-Agent."""

    daemon_threads = True

    def __init__(self, store_url: str):
        super().__init__(("127.0.0.1", 0), _PassOn)
        self.store = urllib.parse.urlsplit(store_url).netloc
        self.seen: list[dict] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


class _PassOn(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.seen.append({"agent": self.headers.get("User-Agent", ""),
                                 "authorization": "Authorization" in self.headers,
                                 "signed": "X-Amz-Signature=" in self.path})  # fmt: skip
        upstream = http.client.HTTPConnection(self.server.store, timeout=30)
        upstream.request(self.command, self.path, headers=dict(self.headers))
        answer = upstream.getresponse()
        body = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        upstream.close()

    do_HEAD = do_GET

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def redirecting(tmp_path_factory):
    """A server whose downloads are redirects to presigned URLs of nanio, which checks their
    signatures and expiry (moto does not), at a public address of its own (StoreDoor)."""
    work = tmp_path_factory.mktemp("redirecting")
    store = NanioServer(work / "nanio")
    store.start()
    door = StoreDoor(store.url)
    settings = {
        "REPO_DATABASE_URL": conftest.STACK.postgres.fresh_database("redirecting"),
        "REPO_BLOB_URL": store.fresh_bucket("redirecting"),
        "REPO_BLOB_REDIRECT": "1",
        "REPO_BLOB_PUBLIC_ENDPOINT": door.url,
        **store.environ,
    }
    server = LiveServer(work / "server", **settings)
    server.cli("user", "create", "alice", "--password", "alice-password")
    server.cli("channel", "create", "team", "--owner", "alice")
    yield SimpleNamespace(server=server, store=store, door=door)
    server.stop()
    door.shutdown()
    door.server_close()
    store.stop()


def test_downloads_redirect_to_presigned_urls_that_pip_uv_and_r_follow(redirecting, dists,
                                                                       client_env, tmp_path,
                                                                       r_built):  # fmt: skip
    server = redirecting.server
    secret = token(server, "--channel", "team", "--scope", "write")
    wheel, sdist = dists.build("redirected", "1.0")
    result = twine_upload(f"{server.url}/api/repo/team", [wheel, sdist], client_env, secret,
                          "x-auth-token")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    upload_r(server, secret, r_built["abc_2.1.tar.gz"], client_env)

    # The file link answers 302 to the store, signed, never cached, naming the file.
    link = file_link(server, secret, "redirected", wheel.name)
    opener = urllib.request.build_opener(NoRedirect())
    with pytest.raises(urllib.error.HTTPError) as answer:
        opener.open(urllib.request.Request(link, headers={"X-Auth": secret}), timeout=10)
    answer.value.close()
    assert answer.value.code == 302
    location = answer.value.headers["Location"]
    assert location.startswith(redirecting.door.url) and "X-Amz-Signature=" in location
    assert answer.value.headers["Cache-Control"] == "no-store"
    assert get(location)[2] == wheel.read_bytes()
    # nanio checks the signature: a changed URL is refused, so the clients below followed it
    # as it was given.
    tampered = location.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert get(tampered)[0] == 403

    index = simple(server, secret)
    installed = pip_install(client_env, tmp_path / "pip", index, "redirected==1.0")
    assert installed.returncode == 0, installed.stderr
    installed = uv_install(client_env, tmp_path / "uv", index, "redirected==1.0")
    assert installed.returncode == 0, installed.stderr
    assert (tmp_path / "uv" / "redirected" / "__init__.py").is_file()
    assert installed_abc(server, secret, tmp_path / "rlib", client_env) == "2.1"
    # Every client came to the store through a presigned URL, and none brought its
    # credentials along (S3 refuses a request with two kinds of authentication).
    # R downloads with its libcurl method, which names libcurl (curl's command says curl/).
    agents = [seen["agent"] for seen in redirecting.door.seen]
    for client in ("pip/", "uv/", "libcurl/"):
        assert any(agent.startswith(client) for agent in agents), agents
    assert all(seen["signed"] and not seen["authorization"] for seen in redirecting.door.seen)


def test_proxied_downloads_keep_range_and_304(pair, dists, client_env):
    secret = token(pair.a, "--channel", "team", "--scope", "write")
    wheel, _ = dists.build("ranged", "1.0")
    assert twine_upload(f"{pair.a.url}/api/repo/team", [wheel], client_env, secret,
                        "x-auth-token").returncode == 0  # fmt: skip
    data = wheel.read_bytes()
    # Through B, which did not receive the upload: its read-through cache fills from the bucket.
    link = file_link(pair.b, secret, "ranged", wheel.name)
    status, headers, body = get(link, {"X-Auth": secret, "Range": "bytes=10-19"})
    assert status == 206 and body == data[10:20]
    status, headers, body = get(link, {"X-Auth": secret})
    assert status == 200 and body == data
    assert get(link, {"X-Auth": secret, "If-None-Match": headers["ETag"]})[0] == 304


def test_a_one_machine_repo_moves_to_postgresql_and_s3_by_backup_and_restore(
    tmp_path, dists, client_env
):
    embedded = {"REPO_DATABASE_URL": "", "REPO_BLOB_URL": ""}
    single = LiveServer(tmp_path / "single", **embedded)
    try:
        single.cli("user", "create", "alice", "--password", "alice-password")
        single.cli("channel", "create", "team", "--owner", "alice")
        secret = token(single, "--channel", "team", "--scope", "write")
        wheel, sdist = dists.build("moved", "1.0")
        result = twine_upload(f"{single.url}/api/repo/team", [wheel, sdist], client_env, secret,
                              "x-auth-token")  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        single.cli("backup", str(tmp_path / "backup"))
    finally:
        single.stop()

    settings = shared_storage("moved")
    restored = run([tool("repo"), "--data-dir", str(tmp_path / "new"), "restore",
                    str(tmp_path / "backup")], {**os.environ, **settings})  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    server = LiveServer(tmp_path / "new", **settings)
    try:
        assert server.blobs() >= {sha256_of(wheel), sha256_of(sdist)}
        installed = pip_install(client_env, tmp_path / "t", simple(server, secret), "moved==1.0")
        assert installed.returncode == 0, installed.stderr
        assert (tmp_path / "t" / "moved" / "__init__.py").is_file()
        assert "0 missing" in server.cli("fsck")
    finally:
        server.stop()
