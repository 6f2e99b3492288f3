"""The one upload endpoint, `POST /api/repo/CHANNEL` (with or without a slash, and under both
token-in-path prefixes): authorise, then hand the form to the Python or R side, and answer in
text (twine, uv, curl) or, to `Accept: application/json`, with the file's JSON (the remote
command line and the web UI).

twine never follows a redirect on upload, so both URL forms are routes of their own.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Request, current_app, request
from werkzeug.formparser import FormDataParser, MultiPartParser

from . import PREFIXES, auth, files, responses
from .api import problems, shapes
from .blobs import PendingBlob
from .config import MB
from .cran import upload as cran_upload
from .errors import Forbidden, Invalid, RepoError
from .pypi import upload as pypi_upload

bp = Blueprint("upload", __name__)
# The blueprint's name under each prefix: the only routes that take large bodies.
UPLOAD_BLUEPRINTS = frozenset(bp.name + suffix for suffix in PREFIXES)
# Every other route (the web UI's forms, future JSON calls) gets a body this small, refused
# before it is parsed: an anonymous POST must not make a worker read a gigabyte.
SMALL_BODY = 1 * MB
SMALL_FORM_PARTS = 100
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# What the upload's form parser reads at once: gunicorn's largest recv() of a body (its
# SocketUnreader.max_body_chunk), so that no read leaves a remainder to copy. A larger size
# only holds more in memory.
READ_SIZE = 1 * MB


class UploadFormParser(FormDataParser):
    """werkzeug's form parser reading an upload's body READ_SIZE bytes at a time, not 64 KiB.

    gunicorn's body reader receives up to 1 MiB per recv() and keeps what a read did not ask
    for, copying that remainder again on every read: with 64 KiB reads each byte was copied
    several times over, and a 1 GiB upload spent 38% of its time there (issue 10, section 4).
    werkzeug takes the size only as MultiPartParser's `buffer_size`, which FormDataParser does
    not pass on (its maintainers want no setting for it, pallets/werkzeug#2514): this is
    FormDataParser._parse_multipart with that one argument added.
    """

    def _parse_multipart(self, stream, mimetype, content_length, options):
        parser = MultiPartParser(
            stream_factory=self.stream_factory,
            max_form_memory_size=self.max_form_memory_size,
            cls=self.cls,
            # A smaller body in one read, without a buffer of READ_SIZE for it.
            buffer_size=min(READ_SIZE, content_length or READ_SIZE),
            max_form_parts=self.max_form_parts,
        )
        boundary = options.get("boundary", "").encode("ascii")
        if not boundary:
            raise ValueError("Missing boundary")
        form, files = parser.parse(stream, boundary, content_length)
        return stream, form, files


class UploadRequest(Request):
    """A request whose uploaded files stream straight into the blob directory while they are
    hashed, so an accepted file is renamed into place, never copied or held in memory.

    Only the upload route takes large bodies and file parts: every other route's limits are
    small, and Flask applies them before it reads a byte of the body.
    """

    @property
    def takes_uploads(self) -> bool:
        return self.blueprint in UPLOAD_BLUEPRINTS

    @property
    def form_data_parser_class(self) -> type[FormDataParser]:
        # Every other route's body is at most SMALL_BODY: werkzeug's own parser reads it.
        return UploadFormParser if self.takes_uploads else FormDataParser

    @property
    def max_content_length(self) -> int | None:
        return super().max_content_length if self.takes_uploads else SMALL_BODY

    @property
    def max_form_memory_size(self) -> int | None:
        return super().max_form_memory_size if self.takes_uploads else SMALL_BODY

    @property
    def max_form_parts(self) -> int | None:
        return super().max_form_parts if self.takes_uploads else SMALL_FORM_PARTS

    def _get_file_stream(self, total_content_length, content_type, filename=None,
                         content_length=None):  # fmt: skip
        if not self.takes_uploads:
            raise Invalid("File parts are accepted only by the upload URL /api/repo/CHANNEL")
        pending = current_app.extensions["blobs"].begin()
        self.__dict__.setdefault("pending_blobs", []).append(pending)
        return pending

    def close(self) -> None:
        # Also drops what a client cut off half way, before werkzeug made a FileStorage of it.
        super().close()
        for pending in self.__dict__.get("pending_blobs", []):
            pending.discard()


def uploaded_blob(field: str) -> tuple[PendingBlob, str] | None:
    """The pending blob and client file name of the form's file part `field`, if any."""
    storage = request.files.get(field)
    if storage is None:
        return None
    return storage.stream, storage.filename or ""


@bp.post("/<channel>")
@bp.post("/<channel>/")
@auth.required.login_required
def upload(channel: str):
    """Dispatch on the form: twine and uv send `:action`, curl for R sends `filetype`."""
    target = auth.channel_for(channel, "write")
    form = request.form
    if ":action" in form:
        side = pypi_upload
    elif "filetype" in form:
        side = cran_upload
    else:
        raise Invalid("Missing form field ':action' (Python) or 'filetype' (R)")
    _refuse_repeated_fields(form, side.SINGLE_FIELDS)
    stored = side.handle(target, auth.current_identity(), form, uploaded_blob)
    if problems.accepts_json():
        # 201 for a new file, 200 for an identical re-upload (twine's rule, kept for text).
        return shapes.stored_file(target, stored), 201 if stored.created else 200
    return responses.text(_message(target, stored))


IDENTICAL = "File already exists (identical content)"


def _message(channel, stored: files.Stored) -> str:
    if not stored.created:
        return IDENTICAL
    where = f" ({stored.subdir})" if stored.subdir else ""
    return f"Uploaded {stored.filename} to channel '{channel['name']}'{where}"


def _refuse_repeated_fields(form, single_fields: tuple[str, ...]) -> None:
    """Fields that say what a request is and what it carries: sent twice, which one would
    count is a parser's accident (an attacker's chance), so neither does. Every other field
    may repeat: twine sends a multiple-use core-metadata field (Platform, Classifier,
    Requires-Dist, ...) once per value."""
    for field in single_fields:
        if len(form.getlist(field)) > 1:
            raise Invalid(f"Form field '{field}' appears more than once")
    if len(request.files.getlist("content")) > 1 or ("content" in form and request.files):
        raise Invalid("Form field 'content' appears more than once")


# Sec-Fetch-Site values of a request a browser did not make for another site's page: "none" is
# one the user typed or bookmarked.
_OWN_SITE = ("same-origin", "none")


@bp.before_request
def _refuse_cross_site() -> None:
    """A page on another origin can make a browser POST a multipart form here with the Basic
    credentials it remembers (no CORS preflight for a form): refuse it before the credentials
    are even looked at, so there is no 401 for the browser to answer with them either.

    twine, uv, curl and R send neither header; a browser's own page of this site sends an
    Origin equal to the site's.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if (fetch_site is not None and fetch_site not in _OWN_SITE) or (
        origin is not None and origin.rstrip("/") != request.host_url.rstrip("/")
    ):
        raise Forbidden(
            "Cross-site upload refused: upload with twine, uv, curl or R, or from this"
            " site's own pages"
        )


def _refuse_unsized_body() -> None:
    """A body without Content-Length (chunked) only on the upload route: the worker reads a
    small sized body before a thread is given to it, but cannot size a chunked one."""
    if (
        request.method in BODY_METHODS
        and request.content_length is None
        and "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        and not request.takes_uploads
    ):
        raise RepoError("Length Required: send the body with a Content-Length header", 411)


def init_app(app: Flask) -> None:
    app.request_class = UploadRequest
    app.before_request(_refuse_unsized_body)
