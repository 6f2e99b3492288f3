"""The mirror's HTTP client: which URLs it may fetch, where credentials go, and the circuit
breaker (mirror.md R6, R7, R16), against small servers on 127.0.0.1."""

from __future__ import annotations

import http.server
import socket
import threading

import httpx
import pytest

from repo import accounts
from repo.mirror import settings
from repo.mirror.upstream import (
    BREAKER_FIRST,
    USER_AGENT,
    Hosts,
    Refused,
    Upstream,
    UpstreamDown,
)


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every GET with the status the test set, and records what it was sent."""

    statuses: list[int] = []
    seen: list[tuple[str, dict[str, str]]] = []
    location: str | None = None

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).seen.append((self.path, dict(self.headers)))
        status = type(self).statuses.pop(0) if type(self).statuses else 200
        self.send_response(status)
        if status in (301, 302) and type(self).location:
            self.send_header("Location", type(self).location)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def upstream_server():
    Recorder.statuses, Recorder.seen, Recorder.location = [], [], None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def make_upstream(repo):
    owner = accounts.create_user(repo.db, "alice", "alice-password")
    channel = accounts.create_channel(repo.db, "mirror", owner)
    clients = []

    def make(source: str, **options) -> Upstream:
        mirror = settings.create(repo.db, channel, "pypi", source, **options)
        clients.append(httpx.Client(trust_env=False))
        return Upstream(clients[-1], repo.db, mirror, clock=Clock())

    yield make
    for client in clients:
        client.close()


def fetch(upstream: Upstream, url: str = "x/") -> int:
    with upstream.get(url) as response:
        return response.status_code


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mirror_of(source: str, *file_hosts: str) -> settings.Mirror:
    return settings.Mirror(1, 1, "pypi", source, file_hosts, 600, "passive", None, None)


@pytest.mark.parametrize(
    "url",
    [
        "http://files.example.org/x.whl",  # not a host of this mirror
        "ftp://pypi.example.org/x.whl",
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
def test_only_the_mirrors_hosts_are_fetched(url):
    with pytest.raises(Refused):
        Hosts(mirror_of("https://pypi.example.org/simple/")).check(url)


def test_the_source_host_on_any_port_and_named_file_hosts_are_fetched():
    hosts = Hosts(mirror_of("http://127.0.0.1:8080/simple/", "127.0.0.2"))

    hosts.check("http://127.0.0.1:9999/packages/x.whl")
    hosts.check("https://127.0.0.2/packages/x.whl")


def test_pypi_sources_may_fetch_pypis_file_host():
    Hosts(mirror_of("https://pypi.org/simple/")).check(
        "https://files.pythonhosted.org/packages/ab/cd/x.whl"
    )


def test_a_private_address_needs_a_source_on_one():
    # A public source's page cannot send the server to the local network.
    hosts = Hosts(mirror_of("https://pypi.example.org/simple/", "localhost"))
    hosts.check("http://localhost/x.whl")  # named as a file host: allowed
    with pytest.raises(Refused, match="link-local|forbidden|not a URL"):
        Hosts(mirror_of("http://[fe80::1]/simple/")).check("http://[fe80::1]/simple/x/")


def test_credentials_go_to_the_source_host_only(make_upstream, upstream_server):
    upstream = make_upstream(upstream_server + "/simple/", username="u", password="secret-pw")
    other = upstream_server.replace("127.0.0.1", "localhost")
    upstream.hosts.allowed.add("localhost")

    assert fetch(upstream) == 200
    assert fetch(upstream, other + "/files/x.whl") == 200

    (page, page_headers), (file, file_headers) = Recorder.seen
    assert page == "/simple/x/" and page_headers["Authorization"].startswith("Basic ")
    assert file == "/files/x.whl" and "Authorization" not in file_headers
    assert page_headers["User-Agent"] == USER_AGENT


def test_a_redirect_to_another_host_is_refused(make_upstream, upstream_server):
    upstream = make_upstream(upstream_server + "/simple/")
    Recorder.statuses, Recorder.location = [302], "http://files.example.org/evil"

    with pytest.raises(Refused):
        fetch(upstream)


def test_a_refused_connection_opens_the_breaker_at_once(make_upstream):
    upstream = make_upstream(f"http://127.0.0.1:{closed_port()}/simple/")

    with pytest.raises(UpstreamDown) as first:
        fetch(upstream)
    with pytest.raises(UpstreamDown) as second:
        fetch(upstream)  # not even tried: the breaker is open

    assert "cannot connect" in first.value.message
    assert second.value.retry_after == BREAKER_FIRST


def test_three_5xx_open_the_breaker_and_a_probe_closes_it(make_upstream, upstream_server):
    upstream = make_upstream(upstream_server + "/simple/")
    Recorder.statuses = [503, 500, 429]
    for _ in range(3):
        with pytest.raises(UpstreamDown):
            fetch(upstream)
    with pytest.raises(UpstreamDown):
        fetch(upstream)
    assert len(Recorder.seen) == 3  # the fourth never left

    upstream.clock.now += BREAKER_FIRST
    assert fetch(upstream) == 200  # the probe
    assert upstream.breaker().open_until == 0
    assert fetch(upstream) == 200


def test_the_breaker_doubles_while_failures_go_on_up_to_its_cap(make_upstream):
    upstream = make_upstream(f"http://127.0.0.1:{closed_port()}/simple/")
    intervals = []
    for _ in range(6):
        with pytest.raises(UpstreamDown):
            fetch(upstream)
        intervals.append(upstream.breaker().open_for)
        upstream.clock.now = upstream.breaker().open_until

    assert intervals == [30, 60, 120, 240, 300, 300]  # mirror.md R7


def test_404_is_an_answer_not_a_failure(make_upstream, upstream_server):
    upstream = make_upstream(upstream_server + "/simple/")
    Recorder.statuses = [404, 404, 404, 404]

    assert [fetch(upstream) for _ in range(4)] == [404] * 4
    assert upstream.breaker().failures == 0
