"""The Python side's read URLs of a channel: the simple index (PEP 503/691/700/592/658) and
the files, all relative to `/api/repo/CHANNEL/` so the token-in-path prefixes just work."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, redirect, request
from packaging.utils import InvalidName, canonicalize_name

from .. import auth, files, responses
from ..db import get_db
from ..errors import NotFound, RepoError
from ..mirror import fetch
from ..mirror import pypi as mirror_pypi
from ..mirror import pypi_pages as mirror
from ..pagecache import PageCache
from . import simple

bp = Blueprint("pypi", __name__)


@bp.record_once
def _make_page_cache(state) -> None:
    state.app.extensions["pages"] = PageCache()


# pip 26.2+ and uv cache index pages by Cache-Control: revalidate every time, so an upload is
# visible to the very next install, and answer the revalidation with a cheap 304.
INDEX_CACHE = "max-age=0, must-revalidate, private"
# Part of every index ETag: a new release of repo that renders pages differently changes it.
PAGE_FORMAT = "p1"


def negotiated_format() -> str:
    chosen = simple.choose_format(request.headers.get("Accept"), request.args.get("format"))
    if chosen is None:
        offers = ", ".join((simple.V1_JSON, simple.V1_HTML, simple.HTML))
        raise RepoError(f"Not acceptable: this index offers {offers}", 406)
    return chosen


def index_etag(channel, content_type: str, snapshot: mirror.Snapshot) -> str:
    """Strong, and computed before rendering: the channel's revision, the mirror's state
    (nothing for a channel's own files) and the format (mirror.md R2)."""
    fmt = content_type.rsplit("+", 1)[-1]
    return f"{PAGE_FORMAT}-{channel['revision']}{snapshot.token}-{fmt}"


def page_key(channel, content_type: str, page: str, snapshot: mirror.Snapshot) -> tuple:
    """What a rendered page is cached under: it changes whenever the channel does, and on a
    mirror channel whenever what the upstream said does (the snapshot's token)."""
    return (channel["id"], channel["revision"], snapshot.token, content_type, page)


def cache_headers(snapshot: mirror.Snapshot) -> dict[str, str]:
    """Beside the ETag: clients revalidate every time (R2); a stale answer says so (R3, R6)."""
    headers = {"Cache-Control": INDEX_CACHE, "Vary": "Accept"}
    if snapshot.cache:
        headers["X-Repo-Cache"] = snapshot.cache
    return headers


def _index_response(channel, content_type: str, page: str, render,
                    snapshot: mirror.Snapshot) -> Response:  # fmt: skip
    """An index page with a strong ETag from the channel's revision (and the mirror's state),
    computed before rendering so that a revalidation costs a few indexed lookups; rendered
    once per state and worker."""
    etag = index_etag(channel, content_type, snapshot)
    response = responses.not_modified(etag)
    if response is None:
        key = page_key(channel, content_type, page, snapshot)
        response = Response(current_app.extensions["pages"].get(key, render),
                            content_type=content_type)  # fmt: skip
    response.set_etag(etag)
    response.headers.update(cache_headers(snapshot))
    return response


@bp.get("/<channel>/simple/")
@auth.required.login_required
def project_list(channel: str):
    """The channel's projects; a mirror channel's are those it holds or has cached (R22)."""
    target = auth.channel_for(channel, "read")
    content_type = negotiated_format()
    snapshot = mirror.root_state(current_app, target)

    def render() -> str:
        return simple.project_list(content_type, mirror.projects(get_db(), target, snapshot))

    return _index_response(target, content_type, "", render, snapshot)


def normalized_project(channel: str, project: str) -> str:
    """The PEP 503 name of `project` (a page under another spelling redirects to it)."""
    try:
        return canonicalize_name(project, validate=True)
    except InvalidName:
        # Never a redirect to it: a line break in the name would split the Location header.
        raise NotFound(f"Project '{project}' not found in channel '{channel}'") from None


@bp.get("/<channel>/simple/<project>/")
@auth.required.login_required
def project_page(channel: str, project: str):
    target = auth.channel_for(channel, "read")
    normalized = normalized_project(channel, project)
    if normalized != project:
        # Relative, so the token-in-path prefix survives the redirect.
        return redirect(f"../{normalized}/", 301)
    content_type = negotiated_format()
    app = current_app._get_current_object()
    # A mirror's page past its TTL is asked for upstream first (mirror.md R1, R3, R6).
    snapshot = mirror.page_state(app, target, normalized) or mirror_pypi.revalidate(
        app, target, normalized
    )

    def render() -> str:
        page = mirror.contents(get_db(), target, normalized, snapshot)
        if page is None:
            raise NotFound(f"Project '{project}' not found in channel '{channel}'")
        return simple.project_page(content_type, normalized, page.files, page.status,
                                   page.status_reason)  # fmt: skip

    return _index_response(target, content_type, normalized, render, snapshot)


@bp.get("/<channel>/files/<sha256>/<filename>")
@auth.required.login_required
def download(channel: str, sha256: str, filename: str):
    """A file, or a wheel's PEP 658 `.metadata`: an upload's from the blob store (sendfile,
    Range, or a redirect to S3), else the channel's upstream's, fetched on its first request
    (mirror.md R12-R15, R19). Cached as blobs are (blobs.IMMUTABLE)."""
    target = auth.channel_for(channel, "read")
    db = get_db()
    row = files.by_digest(db, target["id"], sha256, filename)
    blob = row["sha256"] if row else None
    wheel = filename.removesuffix(".metadata")
    if row is None and wheel != filename:
        uploaded = files.by_digest(db, target["id"], sha256, wheel)
        blob = uploaded["metadata_sha256"] if uploaded else None
    if blob:
        return fetch.send_blob(blob, download_name=filename, proxy=wheel != filename)
    return mirrored_file(db, target, sha256, filename)


def mirrored_file(db, channel, sha256: str, filename: str) -> Response:
    """The channel's upstream file of this name, or the metadata of its upstream wheel."""
    found = fetch.pypi_file(db, channel["id"], sha256, filename)
    if found is not None:
        return fetch.serve(current_app, db, *found)
    wheel = filename.removesuffix(".metadata")
    found = fetch.pypi_file(db, channel["id"], sha256, wheel) if wheel != filename else None
    if found is None:
        raise NotFound(f"File '{filename}' not found in channel '{channel['name']}'")
    return fetch.serve_metadata(current_app, db, *found)
