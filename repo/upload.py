"""The one upload endpoint, `POST /api/repo/CHANNEL` (with or without a slash, and under both
token-in-path prefixes): authorise, then hand the form to the Python or R side.

twine never follows a redirect on upload, so both URL forms are routes of their own.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Request, current_app, request

from . import auth
from .blobs import PendingBlob
from .cran import upload as cran_upload
from .errors import Invalid
from .pypi import upload as pypi_upload

bp = Blueprint("upload", __name__)


class UploadRequest(Request):
    """A request whose uploaded files stream straight into the blob directory while they are
    hashed, so an accepted file is renamed into place, never copied or held in memory."""

    def _get_file_stream(self, total_content_length, content_type, filename=None,
                         content_length=None):  # fmt: skip
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
    _refuse_repeated_fields(form)
    if ":action" in form:
        return pypi_upload.handle(target, auth.current_identity(), form, uploaded_blob)
    if "filetype" in form:
        return cran_upload.handle(target, auth.current_identity(), form, uploaded_blob)
    raise Invalid("Missing form field ':action' (Python) or 'filetype' (R)")


# Fields that say what a request is and what it carries: sent twice, which one would count is
# a parser's accident (an attacker's chance), so neither does.
SINGLE_FIELDS = (":action", "protocol_version", "filetype", "name", "version", "sha256_digest",
                 "blake2_256_digest", "md5_digest", "platform", "rversion")  # fmt: skip


def _refuse_repeated_fields(form) -> None:
    for field in SINGLE_FIELDS:
        if len(form.getlist(field)) > 1:
            raise Invalid(f"Form field '{field}' appears more than once")
    if len(request.files.getlist("content")) > 1 or ("content" in form and request.files):
        raise Invalid("Form field 'content' appears more than once")


def init_app(app: Flask) -> None:
    app.request_class = UploadRequest
