"""A channel's PyPI project pages asked of upstream and stored: one conditional GET per page
(R1), its body read (JSON or HTML, PEP 691) and kept in mirror_pages (validators, serial, when
checked, PEP 792 status) and mirror_files (one row per file as advertised).

A page past its TTL (repo.mirror.pypi_pages says which) is asked for with one request across
all workers (a lease per page, R13), waiting at most 2 s for it when a copy is cached and 5 s
when none is (R3); a slow check finishes in a thread of its own, and the next request sees
its answer. With nothing to answer from, the client gets 503 or 502 (R6).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import quote, urljoin

import httpx
from flask import Flask
from packaging.utils import InvalidName, canonicalize_name

from .. import files
from ..db import Connection, Row, connection_for, now, open_connection, transaction
from ..errors import Invalid, RepoError
from ..pypi import simple
from . import lease, settings
from . import pypi_pages as pages
from .upstream import (
    CLIENT_RETRY_AFTER,
    GONE,
    PAGE_TIMEOUT,
    STALE_TIMEOUT,
    Refused,
    Upstream,
    UpstreamDown,
    bad_gateway,
    clock_of,
    conditional,
    for_mirror,
    read_limited,
    unavailable,
)

# uv's Accept: JSON first, for PEP 700's upload-time and size (mirror.md fact 3).
ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2,"
    " text/html;q=0.01"
)
STALE_WAIT = STALE_TIMEOUT  # R3: with a cached copy, then answer from it
COLD_WAIT = PAGE_TIMEOUT  # R3: without one; pip times out at 15 s and retries five times
MAX_PAGE = 64 * 1024 * 1024  # a project with 10,000 files is a few MiB of JSON
POLL = 0.05


class BadAnswer(Exception):
    """The upstream answered, but not with a page we can use."""


# What a check can fail with: each becomes the client's 503 or 502 when nothing is cached.
_TROUBLE = (UpstreamDown, Refused, BadAnswer)


def revalidate(app: Flask, channel: Row, name: str) -> pages.Snapshot:
    """Ask upstream about `name` (what page_state could not answer) and say what to answer.

    The check runs in a thread of its own: the client waits STALE_WAIT with a cached copy,
    COLD_WAIT without, then is answered from the copy while the check goes on (R3). Raises
    RepoError 503 (with Retry-After) or 502 when there is nothing to answer with (R6).
    """
    db = connection_for(app)
    mirror = pages.upstream_for(db, channel, name)
    if mirror is None:  # removed, or the name made private, since page_state looked
        return pages.LOCAL
    cached = pages.stored_page(db, mirror.id, name) is not None
    wait = STALE_WAIT if cached else COLD_WAIT
    until = time.monotonic() + wait
    check = _Check(app, mirror, name)
    check.start()
    check.join(wait)
    if check.busy:  # another request or worker is asking: wait for its answer (R13)
        _await_holder(db, _lease_key(mirror, name), until, clock_of(app))
    answered = pages.page_state(app, channel, name)
    if answered is not None:
        return answered
    row = pages.stored_page(db, mirror.id, name)
    if row is not None:
        failed = check.error is not None
        return pages.cached(db, row, clock_of(app)(), down=failed,
                            cache=pages.DOWN if failed else pages.STALE)  # fmt: skip
    if files.package_files(db, channel["id"], pages.KIND, name):
        # A merged name: the upstream's trouble never hides the channel's own files (R26).
        return pages.own_files_only(mirror.id)
    if check.error is None:
        check.error = UpstreamDown(
            f"Upstream {mirror.source} did not answer within {wait:g} s", CLIENT_RETRY_AFTER
        )
    raise _failure(check.error)


def refresh(app: Flask, channel: Row, name: str) -> Row:
    """Check project `name` upstream now, whatever its TTL (`repo mirror refresh CH NAME`,
    R5); its page's row (key, state, serial)."""
    try:
        key = canonicalize_name(name, validate=True)
    except InvalidName:
        raise Invalid(f"Invalid project name '{name}'") from None
    db = connection_for(app)
    mirror = pages.upstream_for(db, channel, key)
    if mirror is None:
        raise Invalid(f"'{key}' is private in channel '{channel['name']}': upstream is never"
                      " asked for it")  # fmt: skip
    try:
        if not check(app, db, mirror, key, force=True):
            _await_holder(db, _lease_key(mirror, key), time.monotonic() + COLD_WAIT,
                          clock_of(app))  # fmt: skip
        row = pages.stored_page(db, mirror.id, key)
        if row is None:
            raise UpstreamDown(
                f"Upstream {mirror.source} did not answer in time", CLIENT_RETRY_AFTER
            )
    except _TROUBLE as error:
        raise _failure(error) from None
    return row


def check(app: Flask, db: Connection, mirror: settings.Mirror, name: str,
          force: bool = False) -> bool:  # fmt: skip
    """Ask upstream for `name`'s page and store its answer; False when another thread or
    worker holds the page's lease. A page that became fresh while we waited for the lease is
    not asked again (one upstream request for many clients, R13) unless `force`."""
    clock = clock_of(app)
    key = _lease_key(mirror, name)
    if not lease.take(db, key, clock=clock):
        return False
    try:
        row = pages.stored_page(db, mirror.id, name)
        if force or row is None or not pages.is_fresh(row, mirror.ttl, clock()):
            _ask(for_mirror(app, db, mirror), name, row)
    finally:
        lease.release(db, key)
    return True


class _Check(threading.Thread):
    """One check of a page, on a connection of its own, so that it can outlive the request
    that started it (R3: the next request sees its answer)."""

    def __init__(self, app: Flask, mirror: settings.Mirror, name: str):
        super().__init__(name=f"mirror-page-{name}", daemon=True)
        self.app, self.mirror, self.project = app, mirror, name
        self.busy = False
        self.error: Exception | None = None

    def run(self) -> None:
        db = open_connection(self.app)
        try:
            self.busy = not check(self.app, db, self.mirror, self.project)
        except _TROUBLE as error:
            self.error = error
        finally:
            db.close()


def _lease_key(mirror: settings.Mirror, name: str) -> str:
    return f"pypi-page:{mirror.id}:{name}"


def _await_holder(db: Connection, key: str, until: float,
                  clock: Callable[[], float]) -> None:  # fmt: skip
    """Wait until nobody holds `key`, at most until `until` (time.monotonic): the lease's
    terms are on the app's clock, the client's patience is real time."""
    while lease.held(db, key, clock) is not None and time.monotonic() < until:
        time.sleep(POLL)


def _failure(error: Exception) -> RepoError:
    """R6: the upstream's problem, named, in the reason phrase and a text body."""
    if isinstance(error, UpstreamDown):
        return unavailable(f"Service Unavailable: {error.message}")
    return bad_gateway(f"the upstream's answer was unusable ({error})")


def _ask(upstream: Upstream, name: str, row: Row | None) -> None:
    """One GET of the page, conditional when we hold a copy (R1), and its answer stored."""
    headers = {"Accept": ACCEPT, **conditional(row)}
    moment = upstream.clock()
    with upstream.get(f"{quote(name)}/", headers) as response:
        status = response.status_code
        if status == 304 and len(headers) > 1:
            with transaction(upstream.db):
                _touch(upstream.db, upstream.mirror.id, name, moment)
        elif status in GONE:
            _forget(upstream.db, upstream.mirror.id, name, moment)
        elif status == 200:
            body = _body(response, upstream.mirror)
            try:
                listing = simple.read_project_page(response.headers.get("content-type", ""),
                                                   body, name)  # fmt: skip
            except ValueError as error:
                raise BadAnswer(f"{name}: {error}") from None
            serial = response.headers.get("x-pypi-last-serial", "")
            _store(upstream.db, upstream.mirror.id, name, listing, str(response.url),
                   validators=(response.headers.get("etag"),
                               response.headers.get("last-modified")),
                   serial=int(serial) if serial.isdigit() else listing.serial,
                   moment=moment)  # fmt: skip
        else:
            raise BadAnswer(f"HTTP {status} for {name}")


def _body(response: httpx.Response, mirror: settings.Mirror) -> bytes:
    body = read_limited(response, MAX_PAGE, "a page")
    if body is None:
        raise BadAnswer(f"a page larger than {MAX_PAGE >> 20} MiB")
    return body


# Each file as stored: compared with what is stored to leave an unchanged page's rows alone.
_FIELDS = ("filename", "version", "url", "sha256", "size", "upload_time", "requires_python",
           "yanked", "yanked_reason", "core_metadata")  # fmt: skip
_UPSERT = (
    f"INSERT INTO mirror_files (mirror_id, project, {', '.join(_FIELDS)})"
    f" VALUES (?, ?, {', '.join('?' * len(_FIELDS))})"
    " ON CONFLICT (mirror_id, subdir, filename) DO UPDATE SET listed = 1,"
    # A file whose bytes changed upstream (never on PyPI) is fetched again.
    " blob_sha256 = CASE WHEN mirror_files.sha256 = excluded.sha256"
    " THEN mirror_files.blob_sha256 END,"
    " metadata_blob = CASE WHEN mirror_files.sha256 = excluded.sha256"
    " AND mirror_files.core_metadata IS NOT DISTINCT FROM excluded.core_metadata"
    " THEN mirror_files.metadata_blob END, project = excluded.project, "
    + ", ".join(f"{field} = excluded.{field}" for field in _FIELDS[1:])
)

# A page's whole row, replacing what was stored.
_PAGE_COLUMNS = ("mirror_id", "key", "state", "display_name", "etag", "last_modified", "serial",
                 "checked", "changed", "status", "status_reason")  # fmt: skip
_PAGE = (
    f"INSERT INTO mirror_pages ({', '.join(_PAGE_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(_PAGE_COLUMNS))}) ON CONFLICT (mirror_id, key) DO UPDATE SET "
    + ", ".join(f"{column} = excluded.{column}" for column in _PAGE_COLUMNS[2:])
)


def _store(db: Connection, mirror_id: int, name: str, listing: simple.Listing,
           page_url: str, validators: tuple[str | None, str | None], serial: int | None,
           moment: float) -> None:  # fmt: skip
    """Keep a page's answer. Files gone from it are unlisted, not deleted (a cached blob stays
    referenced); an unchanged page rewrites no file row; an answer with a lower serial than
    the stored one (a lagging CDN node, mirror.md fact 1) is dropped, and the copy kept (R4)."""
    rows = {
        link.filename: (link.filename, link.version, urljoin(page_url, link.url), link.sha256,
                        link.size, link.upload_time, link.requires_python, int(link.yanked),
                        link.yanked_reason, link.core_metadata)
        for link in listing.links
    }  # fmt: skip
    page = (listing.name or name, listing.status, listing.status_reason)
    with transaction(db):
        row = pages.stored_page(db, mirror_id, name)
        if row is not None and row["state"] == "found" and None not in (serial, row["serial"]):
            if serial < row["serial"]:
                _touch(db, mirror_id, name, moment)
                return
        stored = {
            found["filename"]: tuple(found)
            for found in db.execute(
                f"SELECT {', '.join(_FIELDS)} FROM mirror_files WHERE mirror_id = ?"
                " AND project = ? AND listed = 1",
                (mirror_id, name),
            )
        }
        same = row is not None and row["state"] == "found" and stored == rows and page == (
            row["display_name"], row["status"], row["status_reason"])  # fmt: skip
        if not same:
            db.execute(
                "UPDATE mirror_files SET listed = 0 WHERE mirror_id = ? AND project = ?",
                (mirror_id, name),
            )
            db.executemany(_UPSERT, [(mirror_id, name, *values) for values in rows.values()])
        db.execute(_PAGE, (mirror_id, name, "found", page[0], *validators, serial, moment,
                           row["changed"] if same else now(), *page[1:]))  # fmt: skip


def _touch(db: Connection, mirror_id: int, name: str, moment: float) -> None:
    """A check that changed nothing (304, or an older serial): the TTL starts again, and no
    file row is written (R1). Inside the caller's transaction."""
    db.execute(
        "UPDATE mirror_pages SET checked = ? WHERE mirror_id = ? AND key = ?",
        (moment, mirror_id, name),
    )


def _forget(db: Connection, mirror_id: int, name: str, moment: float) -> None:
    """404 or 410: the project disappears (R9), its blobs stay, and the answer is remembered
    for NEGATIVE_TTL (R10)."""
    with transaction(db):
        row = pages.stored_page(db, mirror_id, name)
        unchanged = row is not None and row["state"] == "missing"
        db.execute(
            "UPDATE mirror_files SET listed = 0 WHERE mirror_id = ? AND project = ? AND listed = 1",
            (mirror_id, name),
        )
        db.execute(_PAGE, (mirror_id, name, "missing", None, None, None, None, moment,
                           row["changed"] if unchanged else now(), "active", None))  # fmt: skip
