"""Slow clients against one worker of four threads (security review, finding 3): requests that
stop half way wait in the worker's event loop until their deadline, so pip is served beside
more of them than there are threads; a slow upload that keeps sending works, and one that
stalls ends, leaving nothing behind."""

from __future__ import annotations

import hashlib
import os
import socket
import time
import urllib.request
from types import SimpleNamespace

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from ..unit.builders import META, WHEEL_NAME, twine_form, wheel
from .live import LiveServer, pip_download, sandboxed_env

THREADS = 4
# Longer than pip takes to download a wheel here, so the slow clients of the first test are
# still waiting when it is done; the body timeout is short, so that a stall is over quickly.
HEADER_TIMEOUT = 10
BODY_TIMEOUT = 3
DEADLINE = 60
MB = 1024 * 1024
# A slow upload's body: pieces sent a pause apart, the pause well inside the body timeout and
# all the pauses together longer than the header timeout.
PIECES = HEADER_TIMEOUT + 2
PAUSE = BODY_TIMEOUT / 3
ONE_HEADER_LINE = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
HALF_A_SIGN_IN = (
    b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 1000\r\n\r\n" + b"a" * 500
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = LiveServer(tmp_path_factory.mktemp("slow") / "data", workers=1,
                        REPO_THREADS=str(THREADS), REPO_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
                        REPO_BODY_TIMEOUT=str(BODY_TIMEOUT))  # fmt: skip
    yield server
    server.stop()


@pytest.fixture(scope="module")
def channel(server):
    """The private channel `dev` holding demo-pkg 1.0: its upload path (with a write token in
    it) and its index URL."""
    server.cli("user", "create", "alice", "--password", "alice-password")
    server.cli("channel", "create", "dev", "--owner", "alice")
    token = server.cli("token", "create", "alice", "--channel", "dev", "--scope", "write")
    path = f"/api/repo/t/{token}/dev"
    with connect(server) as sock:
        sock.sendall(b"".join(upload_request(path, wheel(), WHEEL_NAME)))
        reply = whole_reply(sock)
    assert status_line(reply).startswith("HTTP/1.1 200 "), reply.decode(errors="replace")
    return SimpleNamespace(upload=path, index=f"{server.url}{path}/simple/")


@pytest.fixture(scope="module")
def slow_clients(server):
    """Twelve connections, three for each thread: eight sent one header line and four half of
    a sign-in form, and each stopped there."""
    sockets = [connect(server) for _ in range(12)]
    for sock, request in zip(sockets, [ONE_HEADER_LINE] * 8 + [HALF_A_SIGN_IN] * 4, strict=True):
        sock.sendall(request)
    yield sockets
    for sock in sockets:
        sock.close()


def connect(server: LiveServer) -> socket.socket:
    host, port = server.host.split(":")
    return socket.create_connection((host, int(port)), timeout=DEADLINE)


def whole_reply(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    return reply


def status_line(reply: bytes) -> str:
    return reply.split(b"\r\n", 1)[0].decode("latin-1")


def unanswered(sock: socket.socket) -> bool:
    """The connection is open and the server has sent nothing on it."""
    sock.setblocking(False)
    try:
        sock.recv(1)
    except BlockingIOError:
        return True
    finally:
        sock.settimeout(DEADLINE)
    return False


def upload_request(path: str, content: bytes, filename: str, **fields: str) -> tuple[bytes, bytes]:
    """The head and the body of twine's upload of `content` to `path`."""
    form = {key: FileStorage(*value) if isinstance(value, tuple) else value
            for key, value in twine_form(content, filename, **fields).items()}  # fmt: skip
    boundary, body = encode_multipart(form)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode(), body


def big_wheel(version: str) -> tuple[str, bytes]:
    """demo-pkg `version`, a wheel of 5 MiB that does not compress."""
    meta = META.replace(b"Version: 1.0", f"Version: {version}".encode())
    content = wheel(meta, f"demo_pkg-{version}.dist-info", code=os.urandom(5 * MB))
    return f"demo_pkg-{version}-py3-none-any.whl", content


def download(index: str, tmp_path, filename: str, requirement: str) -> bytes:
    """`requirement` as `pip download` gets it from `index`, trying once (a server that does
    not answer fails the test in one pip timeout); a refusal fails the test."""
    result = pip_download(index, tmp_path / "got", sandboxed_env(tmp_path / "home"),
                          requirement, "--retries", "0")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return (tmp_path / "got" / filename).read_bytes()


def test_pip_is_served_while_slow_clients_hold_more_connections_than_threads(
    channel, slow_clients, tmp_path
):
    assert download(channel.index, tmp_path, WHEEL_NAME, "demo-pkg==1.0") == wheel()
    # ... and all along, every slow client was still waiting for an answer.
    assert [unanswered(sock) for sock in slow_clients] == [True] * len(slow_clients)


def test_a_request_not_in_by_the_header_deadline_gets_408_and_is_closed(slow_clients):
    message = f"Request Timeout: the request did not arrive in full within {HEADER_TIMEOUT} s"
    for sock in slow_clients:
        reply = whole_reply(sock)
        assert status_line(reply) == f"HTTP/1.1 408 {message}"
        assert reply.endswith(f"\r\n\r\n{message}\n".encode())


def test_a_slow_upload_that_keeps_sending_succeeds(server, channel, tmp_path):
    filename, content = big_wheel("2.0")
    head, body = upload_request(channel.upload, content, filename, version="2.0")
    size = -(-len(body) // PIECES)
    with connect(server) as sock:
        sock.sendall(head)
        for start in range(0, len(body), size):
            time.sleep(PAUSE)  # the client's pause, not a wait for the server
            sock.sendall(body[start : start + size])
        reply = whole_reply(sock)

    assert status_line(reply) == f"HTTP/1.1 200 Uploaded {filename} to channel 'dev'"
    got = download(channel.index, tmp_path, filename, "demo-pkg==2.0")
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(content).hexdigest()


def test_an_upload_that_stalls_ends_with_408_and_leaves_nothing(server, channel):
    filename, content = big_wheel("3.0")
    head, body = upload_request(channel.upload, content, filename, version="3.0")
    with connect(server) as sock:
        sock.sendall(head + body[: len(body) // 2])
        reply = whole_reply(sock)  # and send nothing more

    message = f"Request Timeout: the client sent nothing for {BODY_TIMEOUT} s"
    assert status_line(reply) == f"HTTP/1.1 408 {message}"
    deadline = time.monotonic() + DEADLINE
    while server.pending() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.pending() == []
    assert server.query("SELECT count(*) FROM files WHERE filename = ?", filename) == [(0,)]
    with urllib.request.urlopen(f"{server.url}/healthz", timeout=DEADLINE) as response:
        assert response.read() == b"ok\n"


def test_a_small_body_behind_expect_100_continue_is_asked_for_once(server):
    with connect(server) as sock:
        sock.sendall(
            b"POST /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: 100-continue\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 5\r\n\r\n"
        )
        continued = sock.recv(64)
        sock.sendall(b"a=bcd")
        reply = whole_reply(sock)

    assert continued == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert b"100 Continue" not in reply
    # The body reached the sign-in form, which looked for its CSRF field in it.
    assert status_line(reply).startswith("HTTP/1.1 400 ")
    assert b"without its security token (CSRF)" in reply


def test_a_head_with_bare_line_feeds_is_refused_at_once_as_gunicorn_does(server):
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\nHost: x\n\n")
        reply = whole_reply(sock)

    assert status_line(reply) == "HTTP/1.1 400 Bad Request"
