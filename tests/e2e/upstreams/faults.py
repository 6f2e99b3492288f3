"""Fault-injecting HTTP upstreams for the mirror's tests: loopback servers that keep their port
across a stop and a start, answer as a test tells them to at run time, and log every request."""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

# Every byte mapped to its complement: the same length, never the same content.
_FLIP = bytes(range(255, -1, -1))


@dataclass(frozen=True)
class Fault:
    """What to do to one answer; the defaults are an honest server."""

    delay: float = 0.0  # seconds before the status line
    chunk_size: int = 65536  # the body goes out in pieces of this many bytes,
    chunk_delay: float = 0.0  # with this pause after each
    status: int | None = None  # answer this instead (404, 410, 429, 500, 502, 503)
    drop_after: int | None = None  # close the connection after this many body bytes
    wrong_bytes: bool = False  # the same length, other content
    html_only: bool = False  # PyPI pages: ignore Accept, as Pulp does (opendatahub #3179)
    gzip_header: bool = False  # a bogus `Content-Encoding: gzip` on an identity body
    serial: int | None = None  # PyPI pages: this serial instead of the real one
    etag: bool = True  # send an ETag and answer a matching If-None-Match with 304


class FaultTable:
    """Faults by URL path pattern (fnmatch, starting with "/") or by normalized project name,
    set from the test's thread while the servers' threads read them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settings: dict[str, dict] = {}

    def set(self, key: str, **settings) -> None:
        """Add `settings` (fields of `Fault`) to those `key` already has."""
        with self._lock:
            merged = {**self._settings.get(key, {}), **settings}
            Fault(**merged)  # an unknown knob fails here, in the test, not in a server thread
            self._settings[key] = merged

    def clear(self) -> None:
        with self._lock:
            self._settings.clear()

    def lookup(self, path: str, project: str | None) -> Fault:
        """The project's settings, overridden by those of every path pattern that matches."""
        with self._lock:
            merged = dict(self._settings.get(project, {})) if project else {}
            for key, settings in self._settings.items():
                if key.startswith("/") and fnmatch.fnmatchcase(path, key):
                    merged.update(settings)
        return Fault(**merged)


@dataclass
class Request:
    """One request as the log keeps it."""

    server: str  # the listener's name: "index", "files" or "cran"
    method: str
    path: str
    headers: HTTPMessage  # all of them; h[name] is None when absent, as in http.client
    status: int | None = None  # None until answered


@dataclass
class Response:
    """The honest answer a route makes, before faults."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class RequestLog:
    """Every request of every listener of an upstream, in arrival order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[Request] = []

    def record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    def requests(self, pattern: str = "*", server: str | None = None) -> list[Request]:
        """The requests whose path matches the fnmatch `pattern`, of one listener or all."""
        with self._lock:
            return [
                r
                for r in self._requests
                if fnmatch.fnmatchcase(r.path, pattern) and server in (None, r.server)
            ]

    def count(self, pattern: str = "*", server: str | None = None) -> int:
        return len(self.requests(pattern, server))

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()


class Upstream:
    """What the listeners of one fake upstream share: faults, log and required credentials."""

    def __init__(self) -> None:
        self.faults = FaultTable()
        self.log = RequestLog()
        self.auth: tuple[str, str] | None = None  # Basic credentials the guarded listener wants
        self.listeners: list[Listener] = []

    def start(self) -> None:
        """Listen (again, on the same ports after a stop)."""
        for listener in self.listeners:
            listener.start()

    def stop(self) -> None:
        """Close the ports and every open connection: from now on connections are refused."""
        for listener in self.listeners:
            listener.stop()

    def reset(self) -> None:
        """Back to honest and open, with an empty log: what a test starts from."""
        self.faults.clear()
        self.log.clear()
        self.auth = None

    def authorized(self, header: str | None) -> bool:
        if self.auth is None:
            return True
        expected = base64.b64encode(":".join(self.auth).encode()).decode()
        return header == f"Basic {expected}"


Route = Callable[[Request, Fault], Response]


class Listener:
    """One port of an upstream; `route` makes the honest answer, faults are applied around it."""

    def __init__(self, upstream: Upstream, name: str, route: Route,
                 project: Callable[[str], str | None] = lambda path: None,
                 guarded: bool = False):  # fmt: skip
        """`project` names the project a path belongs to (for per-project faults); a `guarded`
        listener wants the upstream's `auth`."""
        self.upstream, self.name, self.route, self.project = upstream, name, route, project
        self.guarded = guarded
        self.port = 0
        self._server: _Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self._server is None:
            self._server = _Server(("127.0.0.1", self.port), _Handler)
            self._server.listener = self
            self.port = self._server.server_address[1]
            threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            for connection in list(server.connections):  # keep-alive ones would still answer
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        path = unquote(urlsplit(handler.path).path)
        request = Request(self.name, handler.command, path, handler.headers)
        self.upstream.log.record(request)
        fault = self.upstream.faults.lookup(path, self.project(path))
        time.sleep(fault.delay)
        response = self._answer(request, fault)
        request.status = response.status
        _send(handler, response, fault)

    def _answer(self, request: Request, fault: Fault) -> Response:
        if self.guarded and not self.upstream.authorized(request.headers.get("Authorization")):
            return Response(401, b"credentials required\n",
                            {"WWW-Authenticate": 'Basic realm="upstream"'})  # fmt: skip
        if fault.status:
            retry = {"Retry-After": "1"} if fault.status in (429, 503) else {}
            return Response(fault.status, f"injected {fault.status}\n".encode(), retry)
        response = self.route(request, fault)
        if response.status != 200 or not fault.etag:
            return response
        etag = f'"{hashlib.sha256(response.body).hexdigest()[:32]}"'
        response.headers["ETag"] = etag
        if etag in {tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")}:
            kept = {k: v for k, v in response.headers.items() if k != "Content-Type"}
            return Response(304, b"", kept)
        return response


def _send(handler: BaseHTTPRequestHandler, response: Response, fault: Fault) -> None:
    body = response.body.translate(_FLIP) if fault.wrong_bytes else response.body
    handler.send_response(response.status)
    for name, value in response.headers.items():
        handler.send_header(name, value)
    if fault.gzip_header:
        handler.send_header("Content-Encoding", "gzip")
    if response.status != 304:
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command == "HEAD":
        return
    end = len(body) if fault.drop_after is None else min(fault.drop_after, len(body))
    for start in range(0, end, fault.chunk_size):
        handler.wfile.write(body[start : min(start + fault.chunk_size, end)])
        time.sleep(fault.chunk_delay)
    if fault.drop_after is not None:
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as pip, uv and R's libcurl use it
    server: _Server

    def do_GET(self) -> None:
        self.server.listener.serve(self)

    do_HEAD = do_GET

    def log_message(self, format, *args) -> None:
        """Quiet: the RequestLog is the record."""


class _Server(ThreadingHTTPServer):
    """Remembers its open connections, so that stop() can close the keep-alive ones."""

    listener: Listener

    def __init__(self, address, handler) -> None:
        self.connections: set[socket.socket] = set()
        super().__init__(address, handler)

    def process_request(self, request, client_address) -> None:
        self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        """A client that went away (or a connection stop() closed) is not an error here."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class BlackHole:
    """A port that accepts connections and never answers: the upstream that times out, which
    clients meet differently from a stopped one that refuses (devpi#549)."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def connections(self) -> int:
        """How many connections were accepted so far."""
        return len(self.accepted)

    def _accept(self) -> None:
        while True:
            try:
                self.accepted.append(self._socket.accept()[0])
            except OSError:  # stop() shut the socket down
                return

    def stop(self) -> None:
        self._socket.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
        self._socket.close()
        for connection in self.accepted:
            connection.close()
