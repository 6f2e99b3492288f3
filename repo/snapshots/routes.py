"""Every read URL of a channel under `/api/repo/CHANNEL/snapshot/DATE/`, and its two token-in-
path forms: the simple index and its files, and the CRAN-like tree, as the channel held them at
DATE's instant (repo.snapshots.instant). Read-only: an upload to a snapshot is 405.

Pages are rendered from the history (view.py) and, on a mirror channel, the upstream's side
(mirrored.py); their ETag is their content's hash, so it is strong and the same on every
server. Once the instant is SETTLED in the past, what a channel held then cannot change, and
its pages are served as immutable: those of the channel's own files, a mirror's project page
rendered from a fresh answer of the upstream, and a mirror's R indexes (what the upstream listed
at an instant past is history). What may still change revalidates: a mirror's root (it gains
every project fetched on demand), and a project page answered while the upstream was slow or
down, which lists only the files held here.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, current_app, redirect

from .. import auth, responses
from ..cran import cache, paths
from ..cran import routes as cran_routes
from ..db import Row, get_db, snapshot
from ..errors import NotFound, RepoError
from ..mirror import cran as mirror_cran
from ..mirror import fetch, settings
from ..mirror import pypi_pages as pages
from ..pypi import routes as pypi_routes
from ..pypi import simple
from . import instant, mirrored, view

bp = Blueprint("snapshots", __name__)

SNAPSHOT = "/<channel>/snapshot/<date>"
# How long after an instant a change could still be committed with a time at or before it (a
# transaction under way, another server's clock): past that, a snapshot of it never changes.
SETTLED = timedelta(minutes=5)
IMMUTABLE = "max-age=31536000, immutable"


def _instant(date: str) -> datetime:
    return instant.parse(date, datetime.now(UTC))


def _cache_control(channel: Row, at: datetime, partial: bool, changing: str) -> str:
    """Immutable once settled, unless the answer is `partial` (see the module's docstring);
    else `changing`, the live pages' own. A private channel's stays out of shared caches."""
    if partial or at > datetime.now(UTC) - SETTLED:
        return changing
    return f"{'public' if channel['public'] else 'private'}, {IMMUTABLE}"


def _page(key: tuple, render, content_type: str, cache_control: str) -> Response:
    """A rendered page (kept in the worker's page cache under `key`) with its content's hash
    as a strong ETag, or a 304 when the client holds that."""
    body = current_app.extensions["pages"].get(key, render)
    etag = hashlib.sha256(body).hexdigest()[:32]
    response = responses.not_modified(etag) or Response(body, content_type=content_type)
    response.set_etag(etag)
    response.headers.update({"Cache-Control": cache_control, "Vary": "Accept"})
    return response


@bp.get(f"{SNAPSHOT}/simple/")
@auth.required.login_required
def project_list(channel: str, date: str):
    at = _instant(date)
    target = auth.channel_for(channel, "read")
    content_type = pypi_routes.negotiated_format()
    root = pages.root_state(current_app, target)
    moment = instant.stored(at)

    def render() -> str:
        db = get_db()
        own = view.projects_at(db, target["id"], pages.KIND, moment)
        return simple.project_list(content_type, pages.projects(db, target, root, own))

    key = ("snapshot", target["id"], target["revision"], root.token, moment, content_type, "")
    return _page(
        key,
        render,
        content_type,
        _cache_control(target, at, root.mirror_id is not None, pypi_routes.INDEX_CACHE),
    )


@bp.get(f"{SNAPSHOT}/simple/<project>/")
@auth.required.login_required
def project_page(channel: str, date: str, project: str):
    at = _instant(date)
    target = auth.channel_for(channel, "read")
    normalized = pypi_routes.normalized_project(channel, project)
    if normalized != project:
        return redirect(f"../{normalized}/", 301)
    content_type = pypi_routes.negotiated_format()
    moment = instant.stored(at)
    db = get_db()
    uploads = view.files_at(db, target["id"], moment, kind=pages.KIND, package=normalized)
    state = mirrored.pypi_state(current_app._get_current_object(), target, normalized, at,
                                uploads)  # fmt: skip

    def render() -> str:
        page = pages.contents(get_db(), target, normalized, state, uploads)
        if page is None:
            raise NotFound(f"Project '{project}' not found in channel '{channel}' at {date}")
        return simple.project_page(content_type, normalized, page.files, page.status,
                                   page.status_reason)  # fmt: skip

    key = ("snapshot", target["id"], target["revision"], state.token, moment, content_type,
           normalized)  # fmt: skip
    partial = state.mirror_id is not None and (state.held_only or state.cache is not None)
    response = _page(key, render, content_type,
                     _cache_control(target, at, partial, pypi_routes.INDEX_CACHE))  # fmt: skip
    if state.cache:
        response.headers["X-Repo-Cache"] = state.cache
    return response


@bp.get(f"{SNAPSHOT}/files/<sha256>/<filename>")
@auth.required.login_required
def download(channel: str, date: str, sha256: str, filename: str):
    """A file the snapshot lists, or a wheel's `.metadata`: the channel's own (kept after a
    delete for this), else its upstream's, as the live download answers it."""
    at = _instant(date)
    target = auth.channel_for(channel, "read")
    db = get_db()
    moment = instant.stored(at)
    row = view.file_by_digest(db, target["id"], moment, sha256, filename)
    wheel = filename.removesuffix(".metadata")
    if row is not None:
        return fetch.send_blob(row["sha256"], download_name=filename)
    if wheel != filename:
        uploaded = view.file_by_digest(db, target["id"], moment, sha256, wheel)
        if uploaded is not None and uploaded["metadata_sha256"]:
            return fetch.send_blob(uploaded["metadata_sha256"], download_name=filename,
                                   proxy=True)  # fmt: skip
    return pypi_routes.mirrored_file(db, target, sha256, filename)


@bp.get(f"{SNAPSHOT}/cran/<path:path>")
@auth.required.login_required
def repository(channel: str, date: str, path: str):
    """An index file of the snapshot, or a package file it lists."""
    at = _instant(date)
    target = auth.channel_for(channel, "read")
    wanted = paths.parse(path)
    if wanted is None:
        raise NotFound(f"Not a file of a CRAN-like repository: '{path}'")
    if wanted.index is not None:
        return _index(target, at, wanted)
    rows = view.files_at(get_db(), target["id"], instant.stored(at), kind=cran_routes.KIND,
                         subdir=wanted.subdir, filename=wanted.file)  # fmt: skip
    row = cran_routes.in_place(rows[0] if rows else None, wanted)
    return cran_routes.package_file(target, wanted, row)


def _index(channel: Row, at: datetime, wanted: paths.CranPath) -> Response:
    """One index file of the snapshot's set, built once per state of the history (and of the
    mirror's stored indexes) at or before the instant, under the channel's CRAN cache, where
    `repo gc` prunes it like any past revision's set."""
    assert wanted.index is not None
    db = get_db()
    moment = instant.stored(at)
    upstream = _upstream(db, channel, at, wanted.subdir)
    with snapshot(db):
        last = db.execute(
            "SELECT coalesce(max(id), 0) FROM file_events WHERE channel_id = ? AND at <= ?",
            (channel["id"], moment),
        ).fetchone()[0]
        state = f"s{last}" + ("-{}-{}".format(*upstream.state(db)) if upstream else "")
        directory = cache.root(current_app.config["DATA_DIR"]) / str(channel["id"]) / state

        def rows() -> list[Row]:
            held = view.files_at(db, channel["id"], moment, kind=cran_routes.KIND,
                                 subdir=wanted.subdir)  # fmt: skip
            return [row for row in held if not row["yanked"]]

        location, etag = cache.index_set(db, directory / wanted.subdir, wanted.subdir,
                                         wanted.index, rows, upstream)  # fmt: skip
    cache_control = _cache_control(channel, at, False, cran_routes.INDEX_CACHE)
    return cran_routes.send_index(location, etag, cache_control, wanted.index)


def _upstream(db, channel: Row, at: datetime, subdir: str) -> mirrored.ContribAt | None:
    """The channel's CRAN-like upstream's side of `subdir` at `at`, if it mirrors one there."""
    mirror = settings.find(db, channel["id"], mirror_cran.KIND)
    if mirror is None or not mirror_cran.mirrored_tree(subdir):
        return None
    own = view.files_at(db, channel["id"], instant.stored(at), kind=mirror_cran.KIND)
    private = frozenset(row["package"] for row in own)
    return mirrored.ContribAt(mirror, held=False, stale=False, at=at, private=private)


@bp.route(SNAPSHOT, methods=["POST", "PUT", "PATCH", "DELETE"])
@bp.route(f"{SNAPSHOT}/", methods=["POST", "PUT", "PATCH", "DELETE"])
def read_only(channel: str, date: str):
    """twine or curl pointed at a snapshot: say where uploads go."""
    raise RepoError(
        f"Method Not Allowed: a snapshot is read-only; upload to /api/repo/{channel}",
        405, headers={"Allow": "GET, HEAD"},
    )  # fmt: skip
