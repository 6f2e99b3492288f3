"""Uploads from the web UI: on the one upload endpoint, `POST /api/repo/CHANNEL`, and nowhere
else, the signed-in browser session stands for the user, but only together with the session's
CSRF token in an `X-CSRF-Token` header.

A page of another site can make the browser send the cookie, but can neither read the token
nor send a custom header without a CORS preflight, which this server never answers; and
upload._refuse_cross_site turns away any request a browser marks as cross-site before this.
A cookie without the header is ignored: the caller stays anonymous (401), never the user.
Such an upload needs no message digest in its form (see `by_session`).
"""

from __future__ import annotations

from flask import g, request

from .accounts import Identity
from .ui import forms
from .ui.session import signed_in

CSRF_HEADER = "X-CSRF-Token"
# The upload view of the plain prefix: the token-in-path prefixes carry their own credential.
UPLOAD_ENDPOINT = "upload.upload"


def identity(anonymous: object) -> Identity | object | None:
    """Who sends this request without an Authorization header: the session's user for an
    upload with a matching X-CSRF-Token, `anonymous` without the header or on any other
    route, and None (a refused credential, 401) for a wrong token or an ended session."""
    if request.endpoint != UPLOAD_ENDPOINT or CSRF_HEADER not in request.headers:
        return anonymous
    if not forms.csrf_matches(request.headers[CSRF_HEADER]):
        g.auth_failure = f"{CSRF_HEADER} does not match this browser's session: reload the page"
        return None
    user = signed_in()
    if user is None:
        g.auth_failure = "The web session has ended: sign in again"
    else:
        g.session_upload = True
    return user


def by_session() -> bool:
    """Whether this upload is the web UI's: a browser sends no digest of its own (WebCrypto
    works only on https pages and would read the whole file into memory), and the server
    hashes every upload anyway."""
    return bool(g.get("session_upload"))
