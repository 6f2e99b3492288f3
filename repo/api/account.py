"""Signing in from a command line (`POST /api/auth/login`, a password for a token) and
asking who a credential is (`GET /api/account`)."""

from __future__ import annotations

from .. import accounts, auth
from ..db import get_db
from . import shapes
from .routing import caller, endpoint

DEFAULT_LABEL = "login"
DEFAULT_EXPIRY = "30d"


@endpoint("POST", "/auth/login", "Trade a user name and password for a new manage token",
          need="open", body="Login", answers={201: "NewToken"}, errors=(401, 429))  # fmt: skip
def login(body: dict):
    """The token replaces a live one of the same user and label, so logging in again from
    the same machine never piles up secrets."""
    identity = auth.login(body["username"], body["password"])
    expires_in = accounts.parse_duration(body.get("expires_in", DEFAULT_EXPIRY))
    db = get_db()
    label = body.get("label", DEFAULT_LABEL)
    token_id, secret = accounts.login_token(db, identity.user_id, label, expires_in)
    return shapes.new_token(token_id, secret, accounts.get_token(db, token_id)), 201


@endpoint("GET", "/account", "Who this credential is, and the token it is",
          answers={200: "Account"})  # fmt: skip
def whoami():
    identity = caller()
    token = accounts.get_token(get_db(), identity.token_id) if identity.token_id else None
    return {"username": identity.user_name, "is_admin": identity.is_admin,
            "token": shapes.token(token) if token else None}  # fmt: skip
