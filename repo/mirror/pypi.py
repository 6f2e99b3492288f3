"""A mirror channel's PyPI project pages: what the upstream said of a project, kept in
mirror_pages (validators, serial, when checked, PEP 792 status) and mirror_files (one row per
file as advertised), and the entries our pages render from that, with the channel's own files.

Every channel's pages come through here: one without a pypi upstream, and every name upstream
may not serve (private wins, mirror.md R23-R25), render the channel's uploads only. A page is
answered from the database until its TTL runs out (R1), then revalidated with one conditional
request across all workers (a lease per page, R13), waiting at most 2 s for it when a copy is
cached and 5 s when none is (R3); a slow check finishes in a thread of its own. When the
upstream fails, a cached page lists only the files we hold (R6, R8).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urljoin

import httpx
from flask import Flask
from packaging.utils import InvalidName, canonicalize_name

from .. import files
from ..db import connect, connection_for, now, transaction
from ..errors import Invalid, RepoError
from ..pypi import simple
from . import lease, settings
from .upstream import Refused, Upstream, UpstreamDown, client_for

KIND = "pypi"
# uv's Accept: JSON first, for PEP 700's upload-time and size (mirror.md fact 3).
ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2,"
    " text/html;q=0.01"
)
NEGATIVE_TTL = 60.0  # R10: nginx_pypi_cache's 60 s, not devpi's 1800 s that hides new projects
STALE_WAIT = 2.0  # R3: with a cached copy, then answer from it
COLD_WAIT = 5.0  # R3: without one; pip times out at 15 s and retries five times
MAX_PAGE = 64 * 1024 * 1024  # a project with 10,000 files is a few MiB of JSON
POLL = 0.05
# pip 26 sleeps Retry-After before each of its five retries of a 503 (measured: 30 s apiece for
# Retry-After: 30, the breaker's first interval), uv ignores it: one second lets pip give up in
# about 5 s with our message, where the breaker's time left would hang it for minutes (R6, R7).
RETRY_AFTER = 1
STALE = "stale"  # X-Repo-Cache: the upstream is slow; the check goes on in the background
DOWN = "stale; upstream=down"  # X-Repo-Cache: the upstream failed; only files we hold


class BadAnswer(Exception):
    """The upstream answered, but not with a page we can use."""


@dataclass(frozen=True)
class Snapshot:
    """What a page is rendered from, known before it is rendered: `token` goes into its ETag
    and page-cache key beside the channel's revision, which an upstream change does not bump."""

    token: str
    mirror_id: int | None = None  # None: the channel's own files only
    found: bool = True  # False: the upstream said 404 or 410 (R9, R10), or was never asked
    status: str = "active"
    status_reason: str | None = None
    held_only: bool = False  # the upstream is down: list only files we hold (R8)
    cache: str | None = None  # the X-Repo-Cache header, if any


@dataclass(frozen=True)
class Contents:
    """A project page's files and PEP 792 status."""

    files: list[simple.FileEntry]
    status: str
    status_reason: str | None


# A page of the channel's own files: the ETag is exactly the one of a channel without a mirror.
LOCAL = Snapshot(token="")


def clock_of(app: Flask) -> Callable[[], float]:
    """The app's clock (config "CLOCK", epoch seconds), so that tests of TTLs need not sleep."""
    return app.config.get("CLOCK", time.time)


# --- answering ---------------------------------------------------------------------------


def page_state(app: Flask, channel: sqlite3.Row, name: str) -> Snapshot | None:
    """The snapshot to answer `name`'s page with, without asking upstream; None when upstream
    must be asked first (never asked, or past its TTL while the breaker lets requests out)."""
    db = connection_for(app)
    mirror = _upstream_for(db, channel, name)
    if mirror is None:
        return LOCAL
    row = _page(db, mirror.id, name)
    if row is None:
        return None
    moment = clock_of(app)()
    down = row["open_until"] > moment
    if not down and not _fresh(row, mirror, moment):
        return None
    return _snapshot(db, row, down)


def revalidate(app: Flask, channel: sqlite3.Row, name: str) -> Snapshot:
    """Ask upstream about `name` (what page_state could not answer) and say what to answer.

    The check runs in a thread of its own: the client waits STALE_WAIT with a cached copy,
    COLD_WAIT without, then is answered from the copy while the check goes on (R3). Raises
    RepoError 503 (with Retry-After) or 502 when there is nothing to answer with (R6).
    """
    db = connection_for(app)
    mirror = _upstream_for(db, channel, name)
    if mirror is None:  # removed, or the name made private, since page_state looked
        return LOCAL
    cached = _page(db, mirror.id, name) is not None
    wait = STALE_WAIT if cached else COLD_WAIT
    until = time.monotonic() + wait
    check = _Check(app, mirror, name)
    check.start()
    check.join(wait)
    if check.busy:  # another request or worker is asking: wait for its answer (R13)
        _await_holder(db, _lease_key(mirror, name), until, clock_of(app))
    answered = page_state(app, channel, name)
    if answered is not None:
        return answered
    row = _page(db, mirror.id, name)
    if row is not None:
        failed = check.error is not None
        return _snapshot(db, row, down=failed, cache=DOWN if failed else STALE)
    if files.package_files(db, channel["id"], KIND, name):
        # A merged name: the upstream's trouble never hides the channel's own files (R26).
        return Snapshot(_token(mirror.id, None, 0), mirror.id, found=False, cache=DOWN)
    if check.error is None:
        check.error = UpstreamDown(
            f"Upstream {mirror.source} did not answer within {wait:g} s", RETRY_AFTER
        )
    raise _failure(check.error)


def refresh(app: Flask, channel: sqlite3.Row, name: str) -> sqlite3.Row:
    """Check project `name` upstream now, whatever its TTL (`repo mirror refresh CH NAME`,
    R5); its page's row (key, state, serial)."""
    try:
        key = canonicalize_name(name, validate=True)
    except InvalidName:
        raise Invalid(f"Invalid project name '{name}'") from None
    db = connection_for(app)
    mirror = _upstream_for(db, channel, key)
    if mirror is None:
        raise Invalid(f"'{key}' is private in channel '{channel['name']}': upstream is never"
                      " asked for it")  # fmt: skip
    try:
        if not check(app, db, mirror, key, force=True):
            _await_holder(db, _lease_key(mirror, key), time.monotonic() + COLD_WAIT,
                          clock_of(app))  # fmt: skip
        row = _page(db, mirror.id, key)
        if row is None:
            raise UpstreamDown(f"Upstream {mirror.source} did not answer in time", RETRY_AFTER)
    except (UpstreamDown, Refused, BadAnswer) as error:
        raise _failure(error) from None
    return row


def contents(db: sqlite3.Connection, channel: sqlite3.Row, name: str,
             snapshot: Snapshot) -> Contents | None:  # fmt: skip
    """The files of `name`'s page; None when the channel has no such project.

    A merged name lists the channel's own files first and no upstream file of the same name.
    A quarantined project offers no upstream file (PEP 792, R20); a merged name's own uploads
    are the channel's, so those stay, and then the page does not say quarantined.
    """
    own = [_uploaded(row) for row in files.package_files(db, channel["id"], KIND, name) or []]
    if snapshot.mirror_id is None or not snapshot.found:
        return Contents(own, "active", None) if own else None
    status, reason = snapshot.status, snapshot.status_reason
    if status == "quarantined":
        return Contents(own, "active", None) if own else Contents([], status, reason)
    held = " AND blob_sha256 IS NOT NULL" if snapshot.held_only else ""
    rows = db.execute(
        "SELECT * FROM mirror_files WHERE mirror_id = ? AND project = ? AND listed = 1"
        f"{held} ORDER BY id",
        (snapshot.mirror_id, name),
    )
    taken = {entry.filename for entry in own}
    mirrored = [_mirrored(row) for row in rows if row["filename"] not in taken]
    return Contents(own + mirrored, status, reason)


def root_state(app: Flask, channel: sqlite3.Row) -> Snapshot:
    """The root page's snapshot: it changes with any cached page and with the name rules."""
    db = connection_for(app)
    mirror = settings.find(db, channel["id"], KIND)
    if mirror is None:
        return LOCAL
    count, changed = db.execute(
        "SELECT count(*), max(changed) FROM mirror_pages WHERE mirror_id = ?", (mirror.id,)
    ).fetchone()
    rules = settings.rules(db, channel["id"], KIND)
    return Snapshot(token=_token(mirror.id, f"{count}:{changed}:{rules}", 0), mirror_id=mirror.id)


def projects(db: sqlite3.Connection, channel: sqlite3.Row,
             snapshot: Snapshot) -> list[tuple[str, str]]:  # fmt: skip
    """The root page's (display name, name) pairs: the channel's own projects and those whose
    page it cached and found, never the upstream's whole root (R22; pip and uv never read it)."""
    shown = {row["name"]: row["display_name"] for row in files.projects(db, channel["id"], KIND)}
    if snapshot.mirror_id is not None:
        for row in db.execute(
            "SELECT key, display_name FROM mirror_pages WHERE mirror_id = ? AND state = 'found'"
            " AND status != 'quarantined'",
            (snapshot.mirror_id,),
        ):
            if row["key"] not in shown and settings.upstream_may_serve(
                db, channel["id"], KIND, row["key"]
            ):
                shown[row["key"]] = row["display_name"] or row["key"]
    return [(display, name) for name, display in sorted(shown.items())]


def _upstream_for(db: sqlite3.Connection, channel: sqlite3.Row, name: str):
    """The channel's pypi upstream, if it may be asked for `name` (R23)."""
    mirror = settings.find(db, channel["id"], KIND)
    if mirror is None or not settings.upstream_may_serve(db, channel["id"], KIND, name):
        return None
    return mirror


def _page(db: sqlite3.Connection, mirror_id: int, name: str) -> sqlite3.Row | None:
    return db.execute(
        "SELECT mirror_pages.*, mirrors.open_until FROM mirror_pages"
        " JOIN mirrors ON mirrors.id = mirror_pages.mirror_id"
        " WHERE mirror_id = ? AND key = ?",
        (mirror_id, name),
    ).fetchone()


def _fresh(row: sqlite3.Row, mirror: settings.Mirror, moment: float) -> bool:
    ttl = mirror.ttl if row["state"] == "found" else NEGATIVE_TTL
    return row["checked"] + ttl > moment


def _snapshot(db: sqlite3.Connection, row: sqlite3.Row, down: bool,
              cache: str | None = None) -> Snapshot:  # fmt: skip
    """A cached page's snapshot; `down` lists only the files we hold, which then count."""
    held = 0
    if down:
        held = db.execute(
            "SELECT count(*) FROM mirror_files WHERE mirror_id = ? AND project = ?"
            " AND listed = 1 AND blob_sha256 IS NOT NULL",
            (row["mirror_id"], row["key"]),
        ).fetchone()[0]
    return Snapshot(
        token=_token(row["mirror_id"], row["changed"], held if down else -1),
        mirror_id=row["mirror_id"], found=row["state"] == "found", status=row["status"],
        status_reason=row["status_reason"], held_only=down, cache=DOWN if down else cache,
    )  # fmt: skip


def _token(mirror_id: int, state: str | None, held: int) -> str:
    digest = hashlib.blake2b(f"{mirror_id}|{state}|{held}".encode(), digest_size=6).hexdigest()
    return f"-m{digest}"


def _failure(error: Exception) -> RepoError:
    """R6: the upstream's problem, named, in the reason phrase and a text body."""
    if isinstance(error, UpstreamDown):
        retry = {"Retry-After": str(RETRY_AFTER)}
        return RepoError(f"Service Unavailable: {error.message}", 503, retry)
    return RepoError(f"Bad Gateway: the upstream's answer was unusable ({error})", 502)


def _uploaded(row: sqlite3.Row) -> simple.FileEntry:
    return _entry(row, row["uploaded"], row["metadata_sha256"])


def _mirrored(row: sqlite3.Row) -> simple.FileEntry:
    """An upstream file, linked to this channel like an upload (the download side serves it
    from mirror_files). Its `.metadata` is advertised only with the upstream's sha256, which
    the download side checks (R19); a "true" (hash unknown) is not passed on."""
    metadata = (row["core_metadata"] or "").removeprefix("sha256=")
    return _entry(row, row["upload_time"], metadata if len(metadata) == 64 else None)


def _entry(row: sqlite3.Row, upload_time: str | None, metadata: str | None) -> simple.FileEntry:
    return simple.FileEntry(
        filename=row["filename"], version=row["version"], sha256=row["sha256"],
        size=row["size"], upload_time=upload_time, requires_python=row["requires_python"],
        metadata_sha256=metadata, yanked=bool(row["yanked"]), yanked_reason=row["yanked_reason"],
    )  # fmt: skip


# --- asking upstream ---------------------------------------------------------------------


class _Check(threading.Thread):
    """One check of a page, on a connection of its own, so that it can outlive the request
    that started it (R3: the next request sees its answer)."""

    def __init__(self, app: Flask, mirror: settings.Mirror, name: str):
        super().__init__(name=f"mirror-page-{name}", daemon=True)
        self.app, self.mirror, self.project = app, mirror, name
        self.busy = False
        self.error: Exception | None = None

    def run(self) -> None:
        db = connect(self.app.config["DATABASE"])
        try:
            self.busy = not check(self.app, db, self.mirror, self.project)
        except (UpstreamDown, Refused, BadAnswer) as error:
            self.error = error
        finally:
            db.close()


def check(app: Flask, db: sqlite3.Connection, mirror: settings.Mirror, name: str,
          force: bool = False) -> bool:  # fmt: skip
    """Ask upstream for `name`'s page and store its answer; False when another thread or
    worker holds the page's lease. A page that became fresh while we waited for the lease is
    not asked again (one upstream request for many clients, R13) unless `force`."""
    clock = clock_of(app)
    key = _lease_key(mirror, name)
    if not lease.take(db, key, clock=clock):
        return False
    try:
        row = _page(db, mirror.id, name)
        if force or row is None or not _fresh(row, mirror, clock()):
            _ask(Upstream(client_for(app), db, mirror, clock=clock), name, row)
    finally:
        lease.release(db, key)
    return True


def _lease_key(mirror: settings.Mirror, name: str) -> str:
    return f"pypi-page:{mirror.id}:{name}"


def _await_holder(db: sqlite3.Connection, key: str, until: float,
                  clock: Callable[[], float]) -> None:  # fmt: skip
    """Wait until nobody holds `key`, at most until `until` (time.monotonic): the lease's
    terms are on the app's clock, the client's patience is real time."""
    while lease.held(db, key, clock) is not None and time.monotonic() < until:
        time.sleep(POLL)


def _ask(upstream: Upstream, name: str, row: sqlite3.Row | None) -> None:
    """One GET of the page, conditional when we hold a copy (R1), and its answer stored."""
    headers = {"Accept": ACCEPT}
    if row is not None and row["state"] == "found":
        if row["etag"]:
            headers["If-None-Match"] = row["etag"]
        elif row["last_modified"]:
            headers["If-Modified-Since"] = row["last_modified"]
    moment = upstream.clock()
    with upstream.get(f"{quote(name)}/", headers) as response:
        status = response.status_code
        if status == 304 and len(headers) > 1:
            with transaction(upstream.db):
                _touch(upstream.db, upstream.mirror.id, name, moment)
        elif status in (404, 410):
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
    chunks, size = [], 0
    try:
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > MAX_PAGE:
                raise BadAnswer(f"a page larger than {MAX_PAGE >> 20} MiB")
            chunks.append(chunk)
    except httpx.RequestError as error:  # a read timeout, a connection cut, bad gzip
        message = f"Upstream {mirror.source} broke off a page ({type(error).__name__})"
        raise UpstreamDown(message, RETRY_AFTER) from None
    return b"".join(chunks)


# Each file as stored: compared with what is stored to leave an unchanged page's rows alone.
_FIELDS = ("filename", "version", "url", "sha256", "size", "upload_time", "requires_python",
           "yanked", "yanked_reason", "core_metadata")  # fmt: skip
_UPSERT = (
    f"INSERT INTO mirror_files (mirror_id, project, {', '.join(_FIELDS)})"
    f" VALUES (?, ?, {', '.join('?' * len(_FIELDS))})"
    " ON CONFLICT (mirror_id, subdir, filename) DO UPDATE SET listed = 1,"
    # A file whose bytes changed upstream (never on PyPI) is fetched again.
    " blob_sha256 = CASE WHEN sha256 = excluded.sha256 THEN blob_sha256 END,"
    " metadata_blob = CASE WHEN sha256 = excluded.sha256 AND core_metadata IS"
    " excluded.core_metadata THEN metadata_blob END, project = excluded.project, "
    + ", ".join(f"{field} = excluded.{field}" for field in _FIELDS[1:])
)


def _store(db: sqlite3.Connection, mirror_id: int, name: str, listing: simple.Listing,
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
        row = _page(db, mirror_id, name)
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
        db.execute(
            "INSERT OR REPLACE INTO mirror_pages (mirror_id, key, state, display_name, etag,"
            " last_modified, serial, checked, changed, status, status_reason)"
            " VALUES (?, ?, 'found', ?, ?, ?, ?, ?, ?, ?, ?)",
            (mirror_id, name, page[0], *validators, serial, moment,
             row["changed"] if same else now(), *page[1:]),
        )  # fmt: skip


def _touch(db: sqlite3.Connection, mirror_id: int, name: str, moment: float) -> None:
    """A check that changed nothing (304, or an older serial): the TTL starts again, and no
    file row is written (R1). Inside the caller's transaction."""
    db.execute(
        "UPDATE mirror_pages SET checked = ? WHERE mirror_id = ? AND key = ?",
        (moment, mirror_id, name),
    )


def _forget(db: sqlite3.Connection, mirror_id: int, name: str, moment: float) -> None:
    """404 or 410: the project disappears (R9), its blobs stay, and the answer is remembered
    for NEGATIVE_TTL (R10)."""
    with transaction(db):
        row = _page(db, mirror_id, name)
        unchanged = row is not None and row["state"] == "missing"
        db.execute(
            "UPDATE mirror_files SET listed = 0 WHERE mirror_id = ? AND project = ? AND listed = 1",
            (mirror_id, name),
        )
        db.execute(
            "INSERT OR REPLACE INTO mirror_pages (mirror_id, key, state, checked, changed)"
            " VALUES (?, ?, 'missing', ?, ?)",
            (mirror_id, name, moment, row["changed"] if unchanged else now()),
        )
