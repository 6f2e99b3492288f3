"""The gunicorn worker `repo serve` runs: gthread, except that a request's head (and a small
body) is read in the worker's event loop under a deadline, and a pool thread's reads time out.

gunicorn 27's gthread hands a connection to a pool thread as soon as its first byte arrives
(DEFAULT_WORKER_DATA_TIMEOUT), and the thread then blocks on recv() with no timeout: a few
clients that send half a request and stop take every thread (security review, finding 3).
"""

from __future__ import annotations

import errno
import re
import selectors
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial

from gunicorn.http.message import DEFAULT_MAX_HEADERFIELD_SIZE, MAX_HEADERS, MAX_REQUEST_LINE
from gunicorn.workers.gthread import TConn, ThreadWorker

from .upload import SMALL_BODY

RECV_SIZE = 64 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# RFC 9110 section 10.1.1: an HTTP/1.1 client may wait for "100 Continue" before its body.
_EXPECT_CONTINUE = re.compile(rb"\r\nexpect:[ \t]*100-continue[ \t]*(?=\r\n|\Z)", re.IGNORECASE)


class TimedConn(TConn):
    """A connection whose blocking reads (and writes) give up after `timeout` seconds in
    which nothing moved.

    gthread's handle() calls sock.setblocking(True), which clears a socket's timeout, and then
    conn.init(): the timeout is set again there, before gunicorn's parser reads a byte.
    """

    def __init__(self, cfg, sock: socket.socket, client, server, timeout: float):
        super().__init__(cfg, sock, client, server)
        self.read_timeout = timeout

    def init(self) -> None:
        super().init()
        self.sock.settimeout(self.read_timeout)


@dataclass
class _Incoming:
    """A request being read in the loop: what has come, where it ends once the head says so
    (head and small body), and by when all of it must have come."""

    conn: TConn
    data: bytearray
    deadline: float
    end: int | None = None


class ReadTimeoutWorker(ThreadWorker):
    """gthread whose pool threads get only requests that have arrived, so that slow clients
    wait in the event loop (one selector, no thread each) until their deadline.

    The loop reads a request's head, and a body of at most SMALL_BODY bytes (every route's but
    the upload's), within HEADER_TIMEOUT seconds, else answers 408. The clock starts at the
    accept on a new connection (one that sends nothing is closed unanswered, as gthread closes
    idle ones), at the first byte on a kept-alive one, which waits gunicorn's keepalive for it.
    A larger body (an upload) is read by the pool thread, whose every recv() times out after
    BODY_TIMEOUT seconds of silence: a slow upload that keeps sending works however long it
    takes. Both settings come from the Flask app served (repo.config).

    The loop reads plain HTTP/1 only: with TLS, HTTP/2 prior knowledge, the uwsgi protocol or
    the PROXY protocol the worker is stock gthread.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        cfg = self.cfg
        self.reads_heads = not (
            cfg.is_ssl
            or cfg.http2_cleartext in ("prior-knowledge", "both")
            or cfg.protocol != "http"
            or cfg.proxy_protocol != "off"
        )
        self.head_limit = _head_limit(cfg)
        # Deadlines are "now + HEADER_TIMEOUT" when a request is added: the oldest is first.
        self.incoming: OrderedDict[TConn, _Incoming] = OrderedDict()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.header_timeout = self.wsgi.config["HEADER_TIMEOUT"]
        self.body_timeout = self.wsgi.config["BODY_TIMEOUT"]
        self.timeout_reply = _timeout_reply(self.header_timeout)

    def accept(self, listener: socket.socket) -> None:
        """gthread's accept, with a connection whose pool-thread reads time out."""
        if not self.reads_heads:
            return super().accept(listener)
        try:
            sock, client = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self.enqueue_req(TimedConn(self.cfg, sock, client, listener.getsockname(),
                                   self.body_timeout))  # fmt: skip

    def enqueue_req(self, conn: TConn) -> None:
        """Read the request here before a pool thread gets it. gthread calls this for a new
        connection, for a kept-alive one that became readable, and after a response when the
        client already sent more (those bytes are taken back from gunicorn's parser)."""
        if not self.reads_heads:
            return super().enqueue_req(conn)
        buffered = conn.parser.unreader.take_buffered() if conn.parser else b""
        conn.sock.setblocking(False)
        incoming = _Incoming(conn, bytearray(buffered), time.monotonic() + self.header_timeout)
        self.incoming[conn] = incoming
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._receive, incoming))
        self._advance(incoming)

    def _receive(self, incoming: _Incoming, sock: socket.socket) -> None:
        try:
            data = sock.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError:  # reset by the client
            data = b""
        if not data:
            self._close(incoming)
            return
        incoming.data += data
        self._advance(incoming)

    def _advance(self, incoming: _Incoming) -> None:
        """Hand the request to the pool once its head and small body are in, or as soon as
        gunicorn's parser can refuse it (a head over its limits, a bare LF) as it does today.
        For a head over the limits the parser still reads once more before it refuses, so that
        read waits at most BODY_TIMEOUT."""
        data = incoming.data
        if incoming.end is None:
            head_end = data.find(b"\r\n\r\n")
            if head_end < 0:
                if len(data) > self.head_limit or data.count(b"\n") != data.count(b"\r\n"):
                    self._hand_over(incoming)
                return
            head = bytes(data[:head_end])
            length = _small_body_length(head)
            if length and len(data) < head_end + 4 + length and _expects_continue(head):
                # Answered here, and the field dropped (as a proxy does), so gunicorn does not
                # answer it a second time once the body is in.
                head = _EXPECT_CONTINUE.sub(b"", head)
                data[:head_end], head_end = head, len(head)
                self._send(incoming.conn, CONTINUE)
            incoming.end = head_end + 4 + length
        if len(data) >= incoming.end:
            self._hand_over(incoming)

    def _hand_over(self, incoming: _Incoming) -> None:
        """Give the request to a pool thread, its bytes pushed back into gunicorn's parser."""
        conn = self._forget(incoming)
        conn.init()  # plain HTTP/1: no handshake to make on this thread
        conn.parser.unreader.unread(bytes(incoming.data))
        super().enqueue_req(conn)

    def murder_pending(self) -> None:
        """Also answer 408 to the requests past their deadline (and close a new connection
        that sent nothing, as gthread does): run() calls this at least once a second."""
        super().murder_pending()
        now = time.monotonic()
        while self.incoming:
            incoming = next(iter(self.incoming.values()))
            if incoming.deadline > now:
                break
            if incoming.data:
                self._send(incoming.conn, self.timeout_reply)
            self._close(incoming)

    def _send(self, conn: TConn, reply: bytes) -> None:
        """A short reply, best effort: the socket is non-blocking and its buffer is empty."""
        try:
            conn.sock.send(reply)
        except OSError:
            pass

    def _close(self, incoming: _Incoming) -> None:
        self._forget(incoming).close()
        self.nr_conns -= 1

    def _forget(self, incoming: _Incoming) -> TConn:
        self.poller.unregister(incoming.conn.sock)
        del self.incoming[incoming.conn]
        return incoming.conn


def _small_body_length(head: bytes) -> int:
    """How much body the loop reads with `head`: one Content-Length of at most SMALL_BODY.
    0 for no body, and for one a pool thread reads: an upload's, a chunked one, or a framing
    gunicorn's parser refuses (two lengths, a length that is not a number)."""
    fields = [line.partition(b":") for line in head.lower().split(b"\r\n")[1:]]
    if any(name == b"transfer-encoding" for name, _, _ in fields):
        return 0
    lengths = [value.strip(b" \t") for name, _, value in fields if name == b"content-length"]
    if len(lengths) != 1 or not lengths[0].isdigit() or int(lengths[0]) > SMALL_BODY:
        return 0
    return int(lengths[0])


def _expects_continue(head: bytes) -> bool:
    """An HTTP/1.1 request that asks for "100 Continue" (gunicorn ignores it from HTTP/1.0)."""
    request_line = head.split(b"\r\n", 1)[0]
    return request_line.endswith(b" HTTP/1.1") and bool(_EXPECT_CONTINUE.search(head))


def _head_limit(cfg) -> int:
    """The longest head gunicorn's parser reads before refusing it, from its settings as
    gunicorn.http.message reads them. An unlimited request line (0) counts as the longest
    gunicorn allows otherwise: the pool thread reads the rest of such a head."""
    line = cfg.limit_request_line
    if not 0 < line <= MAX_REQUEST_LINE:
        line = MAX_REQUEST_LINE
    fields = cfg.limit_request_fields
    if not 0 < fields <= MAX_HEADERS:
        fields = MAX_HEADERS
    size = cfg.limit_request_field_size
    if size <= 0:
        size = DEFAULT_MAX_HEADERFIELD_SIZE
    return line + 2 + fields * (size + 2) + 4


def _timeout_reply(seconds: int) -> bytes:
    """The 408 for a request not in within `seconds`, its message in the reason phrase and
    the body (repo.responses.error's shape, which twine and curl each print one of)."""
    message = f"Request Timeout: the request did not arrive in full within {seconds} s"
    body = message + "\n"
    head = (
        f"HTTP/1.1 408 {message}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return (head + body).encode()
