"""Response shapes shared by every blueprint: errors with their reason phrase, plain text,
and conditional answers keyed on an ETag computed before anything is rendered."""

from __future__ import annotations

from flask import Response, render_template, request

from .errors import one_line

# The web UI's blueprint (repo/ui/routes.py): people, not pip or twine, read its errors.
UI = "ui"


def error(status: int, message: str, headers: dict | None = None,
          code: str | None = None) -> Response:  # fmt: skip
    """A one-line text answer whose reason phrase is the message too (twine shows only that);
    a page of the web UI gets an HTML page that says the same, the JSON API (and an upload
    asking for JSON) a problem document with `code`."""
    from .api import problems

    if UI in request.blueprints:
        return _page(status, message, headers)
    if problems.wanted():
        return problems.response(status, message, headers, code)
    line = one_line(message)
    response = Response(line + "\n", status=status, mimetype="text/plain", headers=headers)
    response.status = f"{status} {line}"
    response.headers["Cache-Control"] = "no-store"
    return response


def _page(status: int, message: str, headers: dict | None) -> Response:
    body = render_template("ui/error.html", status=status, message=message)
    response = Response(body, status=status, mimetype="text/html", headers=headers)
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


# The API's HTML (the PEP 503 pages) shows names from uploads: it needs no script, style or
# frame at all. The web UI sets a policy of its own.
API_HEADERS = {"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'"}


def _harden(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html" and "Content-Security-Policy" not in response.headers:
        response.headers.update(API_HEADERS)
    return response


def init_app(app) -> None:
    """Security headers on every response (browsers must never guess a file's type)."""
    app.after_request(_harden)
