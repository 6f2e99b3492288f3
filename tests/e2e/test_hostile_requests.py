"""The security review's reproductions of findings 1 and 2, run again against a real gunicorn:
an anonymous huge form is refused before it is sent, and a page on another origin cannot
make a real Chromium publish into a private channel with the Basic credentials it remembers."""

from __future__ import annotations

import base64
import hashlib
import http.server
import socket
import threading

import pytest

from ..unit.builders import WHEEL_NAME, wheel
from .browser import launch

MB = 1024 * 1024


@pytest.fixture(scope="module")
def write_token(live_server) -> str:
    live_server.cli("user", "create", "alice", "--password", "alice-password")
    live_server.cli("channel", "create", "dev", "--owner", "alice")
    return live_server.cli("token", "create", "alice", "--channel", "dev", "--scope", "write")


def status_line(reply: bytes) -> str:
    return reply.split(b"\r\n", 1)[0].decode("latin-1")


def whole_reply(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    return reply


def test_a_100_mib_anonymous_sign_in_is_refused_before_its_body_is_sent(live_server):
    host, port = live_server.host.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\na=" % (100 * MB)
        )
        # Not one more byte of the 100 MiB: the answer comes anyway.
        reply = whole_reply(sock)

    assert status_line(reply).startswith("HTTP/1.1 413")
    assert b"Request body too large: limit is 1 MB for this URL" in reply


def test_a_file_part_sent_to_sign_in_leaves_nothing_in_the_blob_folder(live_server):
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="f"; filename="x.bin"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n{'x' * 50_000}\r\n--{boundary}--\r\n"
    ).encode()
    host, port = live_server.host.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: multipart/form-data; boundary=%s\r\nContent-Length: %d\r\n\r\n%s"
            % (boundary.encode(), len(body), body)
        )
        reply = whole_reply(sock)

    assert status_line(reply).startswith("HTTP/1.1 400")
    assert b"File parts are accepted only by the upload URL" in reply
    assert live_server.pending() == []


# A page of another origin: it posts a wheel to the private channel as twine would, counting
# on the browser to answer the 401 with the Basic credentials it remembers for the server.
ATTACK = """<!doctype html><script>
const bytes = Uint8Array.from(atob("%(wheel)s"), c => c.charCodeAt(0));
const form = new FormData();
form.append(":action", "file_upload");
form.append("protocol_version", "1");
form.append("sha256_digest", "%(sha256)s");
form.append("content", new Blob([bytes]), "%(filename)s");
fetch("%(target)s", {method: "POST", mode: "no-cors", credentials: "include", body: form})
  .then(() => { document.title = "sent"; }, () => { document.title = "failed"; });
</script>"""


@pytest.fixture
def attacker_site():
    """A page served from another origin (another port of 127.0.0.1) by a local server."""
    pages: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            body = pages.get(self.path, b"")
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield pages, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_another_sites_page_cannot_upload_with_remembered_credentials(live_server, write_token,
                                                                      attacker_site):  # fmt: skip
    pages, attacker = attacker_site
    content = wheel(code=b"# planted\n")
    pages["/attack.html"] = (ATTACK % {
        "wheel": base64.b64encode(content).decode(), "filename": WHEEL_NAME,
        "sha256": hashlib.sha256(content).hexdigest(), "target": f"{live_server.url}/api/repo/dev",
    }).encode()  # fmt: skip
    playwright, browser = launch()
    try:
        page = browser.new_context().new_page()
        # The victim once opened the API in this browser with a token in the URL (the README's
        # pip form): the browser now answers the server's Basic challenge by itself.
        host = live_server.host
        visit = page.goto(f"http://__token__:{write_token}@{host}/api/repo/dev/simple/")
        assert visit is not None and visit.status == 200

        page.goto(f"{attacker}/attack.html")
        page.wait_for_function("document.title !== ''", timeout=20_000)
    finally:
        browser.close()
        playwright.stop()

    assert live_server.query("SELECT filename FROM files") == []
    log = live_server.log()
    assert '"POST /api/repo/dev HTTP/1.1" 403' in log, log
    assert '"POST /api/repo/dev HTTP/1.1" 200' not in log
