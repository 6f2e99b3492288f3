"""A channel's PyPI pages answered from what is stored: the snapshot a page renders from (its
ETag token, PEP 792 status, whether only held files show), a project's files and the root's
projects, out of mirror_pages, mirror_files and the channel's own uploads.

Every channel's pages come through here: one without a pypi upstream, and every name upstream
may not serve (private wins, mirror.md R23-R25), render the channel's uploads only. A page is
answered from the database until its TTL runs out (R1); what this cannot answer, repo.mirror.pypi
asks upstream. While the upstream fails, a cached page lists only the files we hold (R6, R8).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from flask import Flask

from .. import files
from ..db import Connection, Row, connection_for
from ..pypi import simple
from . import settings
from .upstream import clock_of

KIND = "pypi"
NEGATIVE_TTL = 60.0  # R10: nginx_pypi_cache's 60 s, not devpi's 1800 s that hides new projects
STALE = "stale"  # X-Repo-Cache: the upstream is slow; the check goes on in the background
DOWN = "stale; upstream=down"  # X-Repo-Cache: the upstream failed; only files we hold


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
    cutoff: float | None = None  # R21: files uploaded after it (epoch seconds) are not listed
    # A dated snapshot (repo.snapshots): only files whose upload-time is known and not after
    # it (epoch seconds), as uv --exclude-newer takes them.
    until: float | None = None
    cache: str | None = None  # the X-Repo-Cache header, if any


@dataclass(frozen=True)
class Contents:
    """A project page's files and PEP 792 status."""

    files: list[simple.FileEntry]
    status: str
    status_reason: str | None


# A page of the channel's own files: the ETag is exactly the one of a channel without a mirror.
LOCAL = Snapshot(token="")


def page_state(app: Flask, channel: Row, name: str) -> Snapshot | None:
    """The snapshot to answer `name`'s page with, without asking upstream; None when upstream
    must be asked first (never asked, or past its TTL while the breaker lets requests out)."""
    if not channel["mirrored"]:
        return LOCAL
    db = connection_for(app)
    key = settings.normalized(KIND, name)
    row = db.execute(_STATE, (key, name, channel["id"], KIND)).fetchone()
    if row is None:
        return LOCAL
    # With a name rule or an upload of this name, the rules decide (R23-R25); else, as with
    # most names, upstream may serve it, and the one query said all there is to know.
    if (row["ruled"] or row["private"]) and upstream_for(db, channel, name) is None:
        return LOCAL
    if row["key"] is None:
        return None
    moment = clock_of(app)()
    down = row["open_until"] > moment
    if not down and not is_fresh(row, row["ttl"], moment):
        return None
    return cached(db, row, moment, down)


# page_state's one query on a cached page (every request of a mirror channel's page asks it):
# the channel's pypi upstream, whether any name rule or an upload of the name exists, and the
# stored page (NULL columns when none), as stored_page gives it, with the mirror's TTL.
_STATE = (
    "SELECT mirror_pages.*, mirrors.open_until, mirrors.min_age, mirrors.ttl,"
    " EXISTS (SELECT 1 FROM mirror_rules WHERE channel_id = mirrors.channel_id"
    "  AND kind = mirrors.kind) AS ruled,"
    " EXISTS (SELECT 1 FROM packages WHERE channel_id = mirrors.channel_id"
    "  AND kind = mirrors.kind AND name = ?) AS private"
    " FROM mirrors LEFT JOIN mirror_pages ON mirror_pages.mirror_id = mirrors.id"
    "  AND mirror_pages.key = ?"
    " WHERE mirrors.channel_id = ? AND mirrors.kind = ?"
)


def contents(db: Connection, channel: Row, name: str, snapshot: Snapshot,
             uploads: list[Row] | None = None) -> Contents | None:  # fmt: skip
    """The files of `name`'s page; None when the channel has no such project. `uploads`: the
    channel's own files to list (a dated snapshot's), else those it holds now.

    A merged name lists the channel's own files first and no upstream file of the same name.
    A quarantined project offers no upstream file (PEP 792, R20); a merged name's own uploads
    are the channel's, so those stay, and then the page does not say quarantined.
    """
    if uploads is None:
        uploads = files.package_files(db, channel["id"], KIND, name) or []
    own = [_uploaded(row) for row in uploads]
    if snapshot.mirror_id is None or not snapshot.found:
        return Contents(own, "active", None) if own else None
    status, reason = snapshot.status, snapshot.status_reason
    if status == "quarantined":
        return Contents(own, "active", None) if own else Contents([], status, reason)
    held = " AND blob_sha256 IS NOT NULL" if snapshot.held_only else ""
    dated = "" if snapshot.until is None else f" AND {settings.UPLOADED_BY}"
    rows = db.execute(
        "SELECT * FROM mirror_files WHERE mirror_id = ? AND project = ? AND listed = 1"
        f"{held} AND NOT {settings.YOUNG}{dated} ORDER BY id",
        (snapshot.mirror_id, name, snapshot.cutoff,
         *(() if snapshot.until is None else (snapshot.until,))),
    )  # fmt: skip
    taken = {entry.filename for entry in own}
    mirrored = [_mirrored(row) for row in rows if row["filename"] not in taken]
    return Contents(own + mirrored, status, reason)


def root_state(app: Flask, channel: Row) -> Snapshot:
    """The root page's snapshot: it changes with any cached page and with the name rules."""
    if not channel["mirrored"]:
        return LOCAL
    db = connection_for(app)
    mirror = settings.find(db, channel["id"], KIND)
    if mirror is None:
        return LOCAL
    count, changed = db.execute(
        "SELECT count(*), max(changed) FROM mirror_pages WHERE mirror_id = ?", (mirror.id,)
    ).fetchone()
    rules = settings.rules(db, channel["id"], KIND)
    return Snapshot(token=_token(mirror.id, f"{count}:{changed}:{rules}", 0), mirror_id=mirror.id)


def projects(db: Connection, channel: Row, snapshot: Snapshot,
             own: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:  # fmt: skip
    """The root page's (display name, name) pairs: the channel's own projects (`own`, a dated
    snapshot's, else those it holds now) and those whose page it cached and found, never the
    upstream's whole root (R22; pip and uv never read it)."""
    if own is None:
        own = [
            (row["display_name"], row["name"]) for row in files.projects(db, channel["id"], KIND)
        ]
    shown = {name: display for display, name in own}
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


def upstream_for(db: Connection, channel: Row,
                 name: str) -> settings.Mirror | None:  # fmt: skip
    """The channel's pypi upstream, if it may be asked for `name` (R23)."""
    mirror = settings.find(db, channel["id"], KIND)
    if mirror is None or not settings.upstream_may_serve(db, channel["id"], KIND, name):
        return None
    return mirror


def stored_page(db: Connection, mirror_id: int, name: str) -> Row | None:
    """What upstream last said of `name` (its mirror_pages row), with the breaker's open_until
    and the mirror's min_age."""
    return db.execute(
        "SELECT mirror_pages.*, mirrors.open_until, mirrors.min_age FROM mirror_pages"
        " JOIN mirrors ON mirrors.id = mirror_pages.mirror_id"
        " WHERE mirror_id = ? AND key = ?",
        (mirror_id, name),
    ).fetchone()


def is_fresh(row: Row, ttl: float, moment: float) -> bool:
    """Whether a stored page is within its TTL at `moment`: the mirror's `ttl` for a page
    found, NEGATIVE_TTL for a 404 (R10)."""
    return row["checked"] + (ttl if row["state"] == "found" else NEGATIVE_TTL) > moment


def cached(db: Connection, row: Row, moment: float, down: bool,
           cache: str | None = None) -> Snapshot:  # fmt: skip
    """A stored page's snapshot at `moment` (the app's clock); `down` lists only the files we
    hold, which then count. With a minimum age (R21), so do the files still too young: the
    page changes as each comes of age, though upstream's did not."""
    held = 0
    if down:
        held = db.execute(
            "SELECT count(*) FROM mirror_files WHERE mirror_id = ? AND project = ?"
            " AND listed = 1 AND blob_sha256 IS NOT NULL",
            (row["mirror_id"], row["key"]),
        ).fetchone()[0]
    cutoff = settings.cutoff(row["min_age"], moment)
    state = row["changed"]
    if cutoff is not None:
        young = db.execute(
            "SELECT count(*) FROM mirror_files WHERE mirror_id = ? AND project = ?"
            f" AND listed = 1 AND {settings.YOUNG}",
            (row["mirror_id"], row["key"], cutoff),
        ).fetchone()[0]
        state = f"{state}:{young}"
    return Snapshot(
        token=_token(row["mirror_id"], state, held if down else -1),
        mirror_id=row["mirror_id"], found=row["state"] == "found", status=row["status"],
        status_reason=row["status_reason"], held_only=down, cutoff=cutoff,
        cache=DOWN if down else cache,
    )  # fmt: skip


def own_files_only(mirror_id: int) -> Snapshot:
    """A merged name with no stored page and an upstream that failed: the channel's own files,
    which the upstream's trouble never hides (R26), marked down."""
    return Snapshot(_token(mirror_id, None, 0), mirror_id, found=False, cache=DOWN)


def _token(mirror_id: int, state: str | None, held: int) -> str:
    digest = hashlib.blake2b(f"{mirror_id}|{state}|{held}".encode(), digest_size=6).hexdigest()
    return f"-m{digest}"


def _uploaded(row: Row) -> simple.FileEntry:
    return _entry(row, row["uploaded"], row["metadata_sha256"])


def _mirrored(row: Row) -> simple.FileEntry:
    """An upstream file, linked to this channel like an upload (the download side serves it
    from mirror_files). Its `.metadata` is advertised only with the upstream's sha256, which
    the download side checks (R19); a "true" (hash unknown) is not passed on."""
    metadata = (row["core_metadata"] or "").removeprefix("sha256=")
    return _entry(row, row["upload_time"], metadata if len(metadata) == 64 else None)


def _entry(row: Row, upload_time: str | None, metadata: str | None) -> simple.FileEntry:
    return simple.FileEntry(
        filename=row["filename"], version=row["version"], sha256=row["sha256"],
        size=row["size"], upload_time=upload_time, requires_python=row["requires_python"],
        metadata_sha256=metadata, yanked=bool(row["yanked"]), yanked_reason=row["yanked_reason"],
    )  # fmt: skip
