"""Cached index pages answered before Flask: a WSGI layer for the requests pip and uv make
most, a GET of a simple page that the page cache already holds.

A mirror channel's pages are keyed on the mirror's state as well as the channel's revision
(which an upstream change does not bump): the fast path asks the mirror for the page's snapshot
as the route does, and answers only when the mirror needs no word from upstream (a page within
its TTL, or one the open breaker keeps to the files we hold); anything else, Flask revalidates.

It only ever answers with success: it decides nothing of its own, but asks what the routes
ask (check_token and find_channel, here in one query whose answers each process keeps while
the database's access generation stands; role_in, choose_format), and whenever a
request is anything but plain (two credentials, a password, a query string, a refusal, a page
not yet rendered) it hands the request to Flask untouched, which answers as it always does.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable

from flask import Flask
from packaging.utils import canonicalize_name
from werkzeug.http import parse_etags, quote_etag

from .. import accounts
from ..access import AccessCache
from ..accounts import ANONYMOUS, TokenRefused
from ..auth import TOKEN_PASSWORD, TOKEN_USERS
from ..db import connection_for
from ..mirror import pypi_pages as mirror
from ..responses import API_HEADERS
from . import routes, simple

# fullmatch: `$` would also match before a trailing newline (`/simple/%0A`).
_PATH = re.compile(
    r"/api/(?:repo/t/(?P<t1>[^/]+)/|t/(?P<t2>[^/]+)/repo/|repo/)"
    r"(?P<channel>[^/]+)/simple/(?:(?P<project>[^/]+)/)?"
)


class FastIndex:
    """WSGI middleware in front of the Flask app (see the module docstring)."""

    def __init__(self, app: Flask, wsgi_app: Callable):
        self.app = app
        self.wsgi_app = wsgi_app
        self.access = AccessCache()  # this process's token checks (repo/access.py)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        answer = self._answer(environ) if environ.get("REQUEST_METHOD") == "GET" else None
        if answer is None:
            return self.wsgi_app(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    def _answer(self, environ: dict):
        match = _PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None or environ.get("QUERY_STRING"):
            return None
        project = match["project"] or ""
        if project and canonicalize_name(project) != project:
            return None
        secret = _credential(environ, match["t1"] or match["t2"])
        if secret is False:
            return None
        db = connection_for(self.app)
        if secret is None:
            identity, channel = ANONYMOUS, accounts.find_channel(db, match["channel"], ANONYMOUS)
        else:
            try:
                identity, channel = accounts.check_token_for_channel(
                    db, secret, match["channel"], self.access
                )
            except TokenRefused:
                return None
        if channel is None or accounts.role_in(db, identity, channel) is None:
            return None
        content_type = simple.choose_format(environ.get("HTTP_ACCEPT"), None)
        if content_type is None:
            return None
        return _cached(self.app, channel, content_type, project, environ)


def _credential(environ: dict, path_token: str | None) -> str | None | bool:
    """The token of a request that carries exactly one, None for none, False for anything
    else (a password, two credentials, an unreadable header): Flask sorts those out."""
    authorization = environ.get("HTTP_AUTHORIZATION")
    header = environ.get("HTTP_X_AUTH")
    if sum(x is not None for x in (path_token, authorization, header)) > 1:
        return False
    if path_token is not None or header is not None:
        return path_token or header or False
    if authorization is None:
        return None
    scheme, _, encoded = authorization.partition(" ")
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    if scheme.lower() != "basic":
        return False
    if password == TOKEN_PASSWORD:
        return user
    return password if user in TOKEN_USERS else False


def _cached(app: Flask, channel, content_type: str, project: str, environ: dict):
    if project:
        snapshot = mirror.page_state(app, channel, project)
    else:
        snapshot = mirror.root_state(app, channel)
    if snapshot is None or not snapshot.found:
        return None
    etag = routes.index_etag(channel, content_type, snapshot)
    headers = [("ETag", quote_etag(etag)), *routes.cache_headers(snapshot).items(),
               ("X-Content-Type-Options", "nosniff")]  # fmt: skip
    if parse_etags(environ.get("HTTP_IF_NONE_MATCH")).contains(etag):
        return "304 NOT MODIFIED", headers, b""
    body = app.extensions["pages"].peek(routes.page_key(channel, content_type, project, snapshot))
    if body is None:
        return None
    headers += [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    if content_type == simple.HTML:
        headers += list(API_HEADERS.items())
    return "200 OK", headers, body


def init_app(app: Flask) -> None:
    app.wsgi_app = FastIndex(app, app.wsgi_app)
