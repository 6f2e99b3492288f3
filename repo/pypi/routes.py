"""The Python side's read URLs of a channel: the simple index (PEP 503/691/700/592/658) and
the files, all relative to `/api/repo/CHANNEL/` so the token-in-path prefixes just work."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, redirect, request, send_file
from packaging.utils import InvalidName, canonicalize_name

from .. import auth, files, responses
from ..db import get_db
from ..errors import NotFound, RepoError
from ..pagecache import PageCache
from . import simple

bp = Blueprint("pypi", __name__)


@bp.record_once
def _make_page_cache(state) -> None:
    state.app.extensions["pages"] = PageCache()


KIND = "pypi"
# pip 26.2+ and uv cache index pages by Cache-Control: revalidate every time, so an upload is
# visible to the very next install, and answer the revalidation with a cheap 304.
INDEX_CACHE = "max-age=0, must-revalidate, private"
FILE_CACHE = "private, max-age=31536000, immutable"
# Part of every index ETag: a new release of repo that renders pages differently changes it.
PAGE_FORMAT = "p1"


def _negotiated_format() -> str:
    chosen = simple.choose_format(request.headers.get("Accept"), request.args.get("format"))
    if chosen is None:
        offers = ", ".join((simple.V1_JSON, simple.V1_HTML, simple.HTML))
        raise RepoError(f"Not acceptable: this index offers {offers}", 406)
    return chosen


def index_etag(channel, content_type: str) -> str:
    return f"{PAGE_FORMAT}-{channel['revision']}-{content_type.rsplit('+', 1)[-1]}"


def page_key(channel, content_type: str, page: str) -> tuple:
    """What a rendered page is cached under: it changes whenever the channel does."""
    return (channel["id"], channel["revision"], content_type, page)


def _index_response(channel, content_type: str, page: str, render) -> Response:
    """An index page with a strong ETag from the channel's revision, computed before rendering
    so that a revalidation costs one indexed lookup; rendered once per revision and worker."""
    etag = index_etag(channel, content_type)
    response = responses.not_modified(etag)
    if response is None:
        body = current_app.extensions["pages"].get(page_key(channel, content_type, page), render)
        response = Response(body, content_type=content_type)
    response.set_etag(etag)
    response.headers["Cache-Control"] = INDEX_CACHE
    response.vary.add("Accept")
    return response


@bp.get("/<channel>/simple/")
@auth.required.login_required
def project_list(channel: str):
    target = auth.channel_for(channel, "read")
    content_type = _negotiated_format()

    def render() -> str:
        rows = files.projects(get_db(), target["id"], KIND)
        return simple.project_list(content_type, [(r["display_name"], r["name"]) for r in rows])

    return _index_response(target, content_type, "", render)


@bp.get("/<channel>/simple/<project>/")
@auth.required.login_required
def project_page(channel: str, project: str):
    target = auth.channel_for(channel, "read")
    try:
        normalized = canonicalize_name(project, validate=True)
    except InvalidName:
        # Never a redirect to it: a line break in the name would split the Location header.
        raise NotFound(f"Project '{project}' not found in channel '{channel}'") from None
    if normalized != project:
        # Relative, so the token-in-path prefix survives the redirect.
        return redirect(f"../{normalized}/", 301)
    content_type = _negotiated_format()

    def render() -> str:
        rows = files.package_files(get_db(), target["id"], KIND, normalized)
        if not rows:
            raise NotFound(f"Project '{project}' not found in channel '{channel}'")
        return simple.project_page(content_type, normalized, [_entry(row) for row in rows])

    return _index_response(target, content_type, normalized, render)


def _entry(row) -> simple.FileEntry:
    return simple.FileEntry(
        filename=row["filename"], version=row["version"], sha256=row["sha256"],
        size=row["size"], upload_time=row["uploaded"], requires_python=row["requires_python"],
        metadata_sha256=row["metadata_sha256"], yanked=bool(row["yanked"]),
        yanked_reason=row["yanked_reason"],
    )  # fmt: skip


@bp.get("/<channel>/files/<sha256>/<filename>")
@auth.required.login_required
def download(channel: str, sha256: str, filename: str):
    """A file, or a wheel's PEP 658 `.metadata`: sent from disk (sendfile), with Range."""
    target = auth.channel_for(channel, "read")
    db = get_db()
    row = files.by_digest(db, target["id"], sha256, filename)
    blob, name = (row["sha256"], filename) if row else (None, filename)
    if row is None and filename.endswith(".metadata"):
        wheel = files.by_digest(db, target["id"], sha256, filename.removesuffix(".metadata"))
        blob = wheel["metadata_sha256"] if wheel else None
    if blob is None:
        raise NotFound(f"File '{name}' not found in channel '{channel}'")
    response = send_file(
        current_app.extensions["blobs"].path(blob),
        mimetype="application/octet-stream",
        conditional=True,
        etag=blob,
        max_age=None,
    )
    response.headers["Cache-Control"] = FILE_CACHE
    return response
