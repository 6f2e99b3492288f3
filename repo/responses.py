"""Response shapes shared by every blueprint: errors with their reason phrase, plain text,
and conditional answers keyed on an ETag computed before anything is rendered."""

from __future__ import annotations

from flask import Response, request

from .errors import one_line


def error(status: int, message: str, headers: dict | None = None) -> Response:
    """A one-line text answer whose reason phrase is the message too (twine shows only that)."""
    line = one_line(message)
    response = Response(line + "\n", status=status, mimetype="text/plain", headers=headers)
    response.status = f"{status} {line}"
    response.headers["Cache-Control"] = "no-store"
    return response


def text(message: str, status: int = 200) -> Response:
    response = error(status, message)
    del response.headers["Cache-Control"]
    return response


def not_modified(etag: str) -> Response | None:
    """A 304 when the client already holds `etag`, else None (then render the page)."""
    if request.if_none_match.contains(etag):
        response = Response(status=304)
        response.set_etag(etag)
        return response
    return None
