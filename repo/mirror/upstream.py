"""The one way the server talks to an upstream index: only its configured hosts, short
timeouts, credentials to the source's host alone, and a circuit breaker kept in the database.

A client's request never makes the server fetch a URL of the client's choosing: every URL
fetched here comes from the admin's source or from an upstream page, and is checked against
the mirror's hosts (mirror.md R16), redirects included. Failures (refused, timeouts, 5xx, 429)
open the breaker for 30 s, doubling up to 300 s while they go on (R7); 404 and 410 are answers.
Every side builds its Upstream with `for_mirror`, on the app's clock (`clock_of`), and tells its
client about upstream trouble with `unavailable` (503) or `bad_gateway` (502).
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import httpx

from ..db import Connection, Row, now, transaction
from ..errors import RepoError
from .settings import Mirror

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger("repo.mirror")

try:
    USER_AGENT = f"repo/{version('repo')} (+mirror)"
except PackageNotFoundError:  # a zipapp or a checkout that was never installed
    USER_AGENT = "repo (+mirror)"
# A page: 3 s to connect, and a deadline the caller chooses (2 s with a stale copy, else 5 s):
# pip gives up after 15 s and retries five times (mirror.md facts 5, R3).
CONNECT_TIMEOUT = 3.0
PAGE_TIMEOUT = 5.0
STALE_TIMEOUT = 2.0
# A file: large wheels on slow links are legitimate, so no total deadline, only inactivity.
FILE_READ_TIMEOUT = 30.0
MAX_REDIRECTS = 5
BREAKER_FIRST = 30.0
BREAKER_MAX = 300.0
FAILURES_TO_OPEN = 3  # consecutive 5xx/429 answers; one refused or timed-out connection is enough
# PyPI serves its files from another host; a mirror of PyPI may fetch from it without being told.
KNOWN_FILE_HOSTS = {"pypi.org": ("files.pythonhosted.org",)}
FAILURE_STATUSES = frozenset({429}) | frozenset(range(500, 600))
GONE = (404, 410)  # answers, not failures: the page or file is not there (R9)


class UpstreamDown(Exception):
    """The upstream cannot be asked right now; `retry_after` seconds is a fair wait."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class Refused(Exception):
    """A URL the mirror may not fetch (another host, another scheme, a forbidden address)."""


@dataclass(frozen=True)
class Breaker:
    """The circuit breaker's state as stored on the mirror's row."""

    failures: int
    open_until: float
    open_for: float


def _is_private(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_loopback or address.is_private


def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return []
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Link-local and cloud metadata addresses are never fetched, whatever the config says."""
    return address.is_link_local or address.is_multicast or address.is_unspecified


class Hosts:
    """Which URLs a mirror may fetch: http(s) on the source's host (any port) or a file host,
    never a link-local address, and a loopback or private address only when the source or a
    named file host is one itself."""

    def __init__(self, mirror: Mirror):
        source = urlsplit(mirror.source)
        self.source_host = (source.hostname or "").lower()
        self.allowed = {self.source_host, *mirror.file_hosts,
                        *KNOWN_FILE_HOSTS.get(self.source_host, ())}  # fmt: skip
        named = [address for host in self.allowed for address in _addresses(host)]
        self.private_ok = any(_is_private(address) for address in named)

    def check(self, url: str) -> None:
        """Raise Refused unless the mirror may fetch `url`."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or host not in self.allowed:
            raise Refused(f"not a URL of the mirror's upstream hosts: {_shown(url)}")
        for address in _addresses(host):
            if _forbidden(address) or (_is_private(address) and not self.private_ok):
                raise Refused(f"the upstream host {host} resolves to a forbidden address")

    def credentials_for(self, url: str) -> bool:
        """Only the source's own host ever sees the upstream credentials."""
        return (urlsplit(url).hostname or "").lower() == self.source_host


def _shown(url: str) -> str:
    """A URL for a message or a log line: never its query (a signed URL's secret)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


class Upstream:
    """Requests to one mirror's upstream. `clock` is injectable so that tests of TTLs and the
    breaker need not sleep."""

    def __init__(self, client: httpx.Client, db: Connection, mirror: Mirror,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.client = client
        self.db = db
        self.mirror = mirror
        self.hosts = Hosts(mirror)
        self.clock = clock

    # --- the breaker ---------------------------------------------------------------------

    def breaker(self) -> Breaker:
        row = self.db.execute(
            "SELECT failures, open_until, open_for FROM mirrors WHERE id = ?", (self.mirror.id,)
        ).fetchone()
        return Breaker(row["failures"], row["open_until"], row["open_for"])

    def retry_after(self) -> int:
        """Seconds until the breaker lets a probe through (0 when it is closed)."""
        return max(0, int(self.breaker().open_until - self.clock() + 0.999))

    def _admit(self) -> None:
        """Let the request through when the breaker is closed; when it is open, only one
        probe per interval, claimed atomically across workers."""
        state = self.breaker()
        moment = self.clock()
        if state.open_until == 0:
            return
        if state.open_until > moment:
            raise UpstreamDown(self._down_message(), self.retry_after())
        with transaction(self.db):
            claimed = self.db.execute(
                "UPDATE mirrors SET open_until = ? WHERE id = ? AND open_until = ?",
                (moment + state.open_for, self.mirror.id, state.open_until),
            ).rowcount
        if not claimed:
            raise UpstreamDown(self._down_message(), self.retry_after())

    def _down_message(self) -> str:
        row = self.db.execute(
            "SELECT last_error FROM mirrors WHERE id = ?", (self.mirror.id,)
        ).fetchone()
        reason = row["last_error"] or "it failed"
        return f"Upstream {_shown(self.mirror.source)} is unavailable ({reason})"

    def _failed(self, reason: str, at_once: bool) -> None:
        state = self.breaker()
        failures = state.failures + 1
        opens = at_once or failures >= FAILURES_TO_OPEN
        open_for = min(BREAKER_MAX, state.open_for * 2 or BREAKER_FIRST) if opens else 0.0
        with transaction(self.db):
            self.db.execute(
                "UPDATE mirrors SET failures = ?, open_until = ?, open_for = ?, last_error = ?,"
                " last_error_at = ? WHERE id = ?",
                (failures, self.clock() + open_for if opens else 0.0, open_for, reason, now(),
                 self.mirror.id),
            )  # fmt: skip
        if opens and state.open_until == 0:
            log.warning("upstream %s is down (%s): not asked for %d s",
                        _shown(self.mirror.source), reason, open_for)  # fmt: skip

    def _succeeded(self) -> None:
        state = self.breaker()
        with transaction(self.db):
            self.db.execute(
                "UPDATE mirrors SET failures = 0, open_until = 0, open_for = 0,"
                " last_success = ? WHERE id = ?",
                (now(), self.mirror.id),
            )
        if state.open_until:
            log.warning("upstream %s is back", _shown(self.mirror.source))

    # --- requests ------------------------------------------------------------------------

    @contextmanager
    def get(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        deadline: float = PAGE_TIMEOUT,
        file: bool = False,
    ) -> Iterator[httpx.Response]:
        """A streamed GET of `url` (relative URLs resolve against the source), following a
        few redirects, each re-checked; the response is open inside the block.

        Raises UpstreamDown (breaker open, refused, timed out, 5xx, 429: each counted) and
        Refused (a URL the mirror may not fetch). A page gets `deadline` seconds to answer;
        a file only an inactivity timeout.
        """
        self._admit()
        if file:
            timeout = httpx.Timeout(FILE_READ_TIMEOUT, connect=CONNECT_TIMEOUT)
        else:
            timeout = httpx.Timeout(deadline, connect=min(CONNECT_TIMEOUT, deadline))
        target = urljoin(self.mirror.source, url)
        for _ in range(MAX_REDIRECTS + 1):
            self.hosts.check(target)
            request = self.client.build_request(
                "GET", target, headers=self._headers(target, headers, file), timeout=timeout
            )
            try:
                response = self.client.send(request, stream=True)
            except httpx.TimeoutException:
                self._failed(f"no answer from {urlsplit(target).netloc} in time", at_once=True)
                raise UpstreamDown(self._down_message(), self.retry_after()) from None
            except httpx.TransportError as error:
                self._failed(f"cannot connect: {type(error).__name__}", at_once=True)
                raise UpstreamDown(self._down_message(), self.retry_after()) from None
            if response.is_redirect and "location" in response.headers:
                response.close()
                target = urljoin(target, response.headers["location"])
                continue
            break
        else:
            response.close()
            raise Refused(f"more than {MAX_REDIRECTS} redirects from {_shown(url)}")
        if response.status_code in FAILURE_STATUSES:
            response.close()
            self._failed(f"HTTP {response.status_code} from {_shown(target)}", at_once=False)
            retry = response.headers.get("retry-after", "")
            wait = int(retry) if retry.isdigit() else max(1, self.retry_after())
            raise UpstreamDown(self._down_message(), wait)
        self._succeeded()
        try:
            yield response
        finally:
            response.close()

    def _headers(self, url: str, extra: dict[str, str] | None, file: bool) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, **(extra or {})}
        if file:
            # Bytes exactly as stored upstream: their hash is what the page promises.
            headers["Accept-Encoding"] = "identity"
        if self.hosts.credentials_for(url) and (self.mirror.username or self.mirror.password):
            pair = f"{self.mirror.username or ''}:{self.mirror.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        return headers


def conditional(page: Row | None) -> dict[str, str]:
    """If-None-Match, else If-Modified-Since, from what upstream last sent for a page we
    found (a mirror_pages row), so that an unchanged page costs a 304 (R1)."""
    if page is None or page["state"] != "found":
        return {}
    if page["etag"]:
        return {"If-None-Match": page["etag"]}
    return {"If-Modified-Since": page["last_modified"]} if page["last_modified"] else {}


def read_limited(response: httpx.Response, limit: int, what: str) -> bytes | None:
    """The whole body as httpx decodes it (a Content-Encoding undone), or None as soon as it
    passes `limit` bytes: a bound on what a hostile upstream can make us hold. An upstream
    that breaks off mid-body (a read timeout, a cut connection, bad gzip) is down."""
    chunks, size = [], 0
    try:
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    except httpx.RequestError as error:
        source = _shown(str(response.request.url))
        raise UpstreamDown(f"Upstream {source} broke off {what} ({type(error).__name__})",
                           CLIENT_RETRY_AFTER) from None  # fmt: skip
    return b"".join(chunks)


# pip 26 sleeps Retry-After before each of its five retries of a 503 (measured: 30 s apiece for
# Retry-After: 30, the breaker's first interval), uv ignores it: one second lets pip give up in
# about 5 s with our message, where the breaker's time left would hang it for minutes (R6, R7).
CLIENT_RETRY_AFTER = 1


def unavailable(message: str) -> RepoError:
    """The client's 503 when upstream cannot be asked: `message` as the reason phrase, and
    a Retry-After of CLIENT_RETRY_AFTER (R6)."""
    return RepoError(message, 503, {"Retry-After": str(CLIENT_RETRY_AFTER)})


def bad_gateway(reason: str) -> RepoError:
    """The client's 502 when upstream answered with something we cannot use."""
    return RepoError(f"Bad Gateway: {reason}", 502)


def clock_of(app: Flask) -> Callable[[], float]:
    """The app's clock (config "CLOCK", epoch seconds), so that tests of TTLs and the breaker
    need not sleep (mirror.md R-T3)."""
    return app.config.get("CLOCK", time.time)


def for_mirror(app: Flask, db: Connection, mirror: Mirror) -> Upstream:
    """Requests to `mirror`'s upstream on the worker's pool and the app's clock, the one way
    every side (pages, indexes, files) makes them, so that all read the breaker alike."""
    return Upstream(client_for(app), db, mirror, clock=clock_of(app))


def client_for(app: Flask) -> httpx.Client:
    """The worker process's connection pool, shared by its threads (httpx.Client is
    thread-safe), made on first use after gunicorn forked; redirects are followed by hand in
    Upstream.get, so that each is checked. The environment's proxies are not used: the admin
    configured the upstream, not the shell."""
    made = app.extensions.get("upstream_client")
    if made is None or made[0] != os.getpid():
        pool = httpx.Limits(max_connections=32, max_keepalive_connections=8)
        made = app.extensions["upstream_client"] = (
            os.getpid(),
            httpx.Client(follow_redirects=False, trust_env=False, limits=pool),
        )
    return made[1]
