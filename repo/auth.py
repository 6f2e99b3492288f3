"""Who is asking: one identify() behind every way a client can present a credential.

Flask-HTTPAuth reads the headers: Basic (`TOKEN:x-auth-token`, `__token__:TOKEN`, or a user
name and password), `Authorization: Bearer TOKEN` (the JSON API's clients) and
`X-Auth: TOKEN`. A token in the path (`/api/repo/t/TOKEN/...`, `/api/t/TOKEN/repo/...`) is
taken out of the URL values before the view runs and wins over any header. No credential at
all is the anonymous caller; a wrong one is always a 401.
"""

from __future__ import annotations

from flask import Flask, current_app, g, request
from flask_httpauth import HTTPBasicAuth, HTTPTokenAuth, MultiAuth
from werkzeug.middleware.proxy_fix import ProxyFix

from . import accounts, responses, session_upload, throttle
from .accounts import ANONYMOUS, Identity, TokenRefused
from .db import get_db
from .errors import Forbidden, NotFound, RepoError, Unauthorized

REALM = "repo"
TOKEN_PASSWORD = "x-auth-token"
TOKEN_USERS = ("__token__", TOKEN_PASSWORD)
CHALLENGE = {"WWW-Authenticate": f'Basic realm="{REALM}"'}


class _HeaderTokenAuth(HTTPTokenAuth):
    """`X-Auth: TOKEN`, unless the path carries a token: then MultiAuth falls back to Basic,
    whose verifier reads the path token (an empty X-Auth would otherwise end in a 401)."""

    def is_compatible_auth(self, headers) -> bool:
        return "path_token" not in g and super().is_compatible_auth(headers)


basic = HTTPBasicAuth(realm=REALM)
header = _HeaderTokenAuth(header="X-Auth", realm=REALM)
required = MultiAuth(basic, header)


def _from_token(secret: str) -> Identity | None:
    try:
        return accounts.check_token(get_db(), secret)
    except TokenRefused as refused:
        g.auth_failure = str(refused)
        g.auth_code = refused.code
        return None


def _path_token_identity() -> Identity | None:
    return _from_token(g.path_token)


@basic.verify_password
def _verify_basic(username: str, password: str):
    if "path_token" in g:
        return _path_token_identity()
    if "Authorization" not in request.headers:
        # Flask-HTTPAuth calls this without any Authorization header too (X-Auth goes to
        # the other verifier): that is the anonymous caller, or the web UI uploading with
        # its session and CSRF header.
        return session_upload.identity(_Anonymous)
    authorization = request.authorization
    if authorization is not None and authorization.type == "bearer" and authorization.token:
        # Only without X-Auth: MultiAuth hands Bearer and X-Auth to _verify_header.
        return _from_token(authorization.token)
    if authorization is None or authorization.type != "basic" or not username:
        # Flask-HTTPAuth reads any other scheme as Basic; an unreadable or other header is a
        # wrong credential, never the anonymous caller.
        g.auth_failure = "Invalid Authorization header: use Basic or Bearer"
        return None
    if "X-Auth" in request.headers:
        g.auth_failure = "Send one credential: Authorization or X-Auth, not both"
        return None
    if password == TOKEN_PASSWORD:
        return _from_token(username)
    if username in TOKEN_USERS:
        return _from_token(password)
    _refuse_throttled()
    identity = accounts.check_password(get_db(), username, password)
    if identity is None:
        g.auth_failure = "Invalid user name or password"
        g.auth_code = "invalid_credentials"
    return identity


@header.verify_token
def _verify_header(secret: str):
    # MultiAuth picks this verifier for an Authorization header of any scheme but exactly
    # `Basic` (`basic`, `Bearer`): two credentials all the same, as _verify_basic refuses.
    if "Authorization" in request.headers:
        g.auth_failure = "Send one credential: Authorization or X-Auth, not both"
        return None
    return _from_token(secret)


class _AnonymousCaller:
    """Truthy stand-in: Flask-HTTPAuth treats a falsy result as a failed login."""


_Anonymous = _AnonymousCaller()


@basic.error_handler
@header.error_handler
def _auth_error(status: int):
    if status == 401:
        _refuse_throttled()
        throttle.record_failure(get_db(), _client())
        message = g.pop("auth_failure", "Invalid or missing credentials")
        return responses.error(401, message, CHALLENGE, g.pop("auth_code", "invalid_credentials"))
    return responses.error(status, "Forbidden")


def _client() -> str:
    return request.remote_addr or "unknown"


def _refuse_throttled() -> None:
    """After too many failures from this address: 429, before a password is even checked and
    instead of each further 401. (A good token is not held up: guessing one is hopeless.)"""
    limit = current_app.config["AUTH_FAILURE_LIMIT"]
    wait = throttle.retry_after(get_db(), _client(), limit)
    if wait is not None:
        raise RepoError(
            f"Too many failed authentications from this address: try again in {wait} s",
            429,
            {"Retry-After": str(wait)},
            code="rate_limited",
        )


def login(username: str, password: str) -> Identity:
    """The user a name and password belong to, throttled and counted as every password is
    (the JSON API's login, which takes them in its body); Unauthorized when wrong."""
    _refuse_throttled()
    identity = accounts.check_password(get_db(), username, password)
    if identity is None:
        throttle.record_failure(get_db(), _client())
        raise Unauthorized(
            "Invalid user name or password", headers=CHALLENGE, code="invalid_credentials"
        )
    return identity


def current_identity() -> Identity | None:
    """The identity of this request, or ANONYMOUS."""
    user = required.current_user()
    return ANONYMOUS if user is _Anonymous or user is None else user


def channel_for(name: str, need: str):
    """The channel `name` if the caller may `need` ('read', 'write' or 'owner') in it.

    Without a credential, a private channel and a missing one both answer 401, so names do
    not leak; with one, both answer 404; a channel the caller can see but not change is 403.
    """
    db = get_db()
    identity = current_identity()
    channel = accounts.find_channel(db, name, identity)
    role = accounts.role_in(db, identity, channel) if channel is not None else None
    if identity is ANONYMOUS and accounts.rank(role) < accounts.rank(need):
        raise Unauthorized("Credentials required", headers=CHALLENGE)
    if role is None:
        raise NotFound(f"Channel '{name}' not found")
    if accounts.rank(role) < accounts.rank(need):
        verb = "upload to" if need == "write" else "manage"
        raise Forbidden(f"{identity.describe()} may not {verb} channel '{name}'")
    return channel


def init_app(app: Flask) -> None:
    @app.url_value_preprocessor
    def _take_path_token(_endpoint, values):
        if values and "token" in values:
            g.path_token = values.pop("token")

    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        # Behind a reverse proxy every request comes from the proxy: take the client's address
        # (throttling) and scheme and host (the UI's URLs) from the headers it sets.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
