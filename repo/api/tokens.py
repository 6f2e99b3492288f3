"""Tokens over the API: list, mint, show, revoke and rotate them, and `current`, the token
a request came with, which may always read and revoke itself (`repo logout`)."""

from __future__ import annotations

from .. import accounts
from ..accounts import Identity
from ..db import get_db
from ..errors import Forbidden, Invalid, NotFound
from . import shapes
from .routing import argument, caller, endpoint, page

TOKEN = "/tokens/<int:token_id>"


def _user(identity: Identity, name: str | None) -> Identity:
    """The user a request acts for: the caller, or for an admin the user `name`."""
    if name is None or name.lower() == identity.user_name.lower():
        return Identity(identity.user_id, identity.user_name, identity.is_admin)
    if not identity.is_admin:
        raise Forbidden(f"User '{identity.user_name}' may act only for themselves: not an admin")
    row = accounts.get_user(get_db(), name)
    return Identity(row["id"], row["name"], bool(row["is_admin"]))


def _token(identity: Identity, token_id: int) -> dict:
    """A token the caller may see: their own, or any for an admin; else not found, so ids
    tell nobody anything."""
    row = accounts.get_token(get_db(), token_id)
    if row is None or (row["user_id"] != identity.user_id and not identity.is_admin):
        raise NotFound(f"Token {token_id} not found")
    return row


def _own_or_managing(token_id: int) -> tuple[Identity, dict]:
    """The token `token_id` for a caller that manages tokens, or that is this very token."""
    identity = caller()
    if token_id != identity.token_id and not identity.manages:
        raise Forbidden(
            f"{identity.describe()} may not manage other tokens: it takes a password or a"
            " user token of scope manage"
        )
    return identity, _token(identity, token_id)


def _current() -> int:
    identity = caller()
    if identity.token_id is None:
        raise NotFound("No current token: this request was authenticated by password")
    return identity.token_id


@endpoint("GET", "/tokens", "Your tokens; an admin's ?user=NAME lists that user's",
          need="manage", query=("user", "offset", "limit"), answers={200: "TokenList"},
          errors=(404,))  # fmt: skip
def list_tokens():
    user = _user(caller(), argument("user"))
    return page([shapes.token(row) for row in accounts.list_tokens(get_db(), user.user_id)])


@endpoint("POST", "/tokens", "Mint a token: a user token (read, write, manage) or a channel"
          " token (read, write)", need="manage", body="TokenCreate",
          answers={201: "NewToken"}, errors=(404,))  # fmt: skip
def create(body: dict):
    db = get_db()
    user = _user(caller(), body.get("user"))
    channel_id = (
        _channel_for_token(user, body["channel"], body["scope"]) if "channel" in body else None
    )
    expires_in = accounts.parse_duration(body["expires_in"]) if "expires_in" in body else None
    token_id, secret = accounts.create_token(
        db, user.user_id, channel_id, body["scope"], expires_in, body.get("label", "")
    )
    return shapes.new_token(token_id, secret, accounts.get_token(db, token_id)), 201


def _channel_for_token(user: Identity, name: str, scope: str) -> int:
    """The channel a new channel token is for: one its user may see, and act in as far as
    the scope says (a token never has more rights than its user; refuse one that would look
    as if it had)."""
    db = get_db()
    channel = accounts.find_channel(db, name, user)
    role = accounts.role_in(db, user, channel) if channel is not None else None
    if role is None:
        raise NotFound(f"Channel '{name}' not found")
    if accounts.rank(role) < accounts.rank(scope):
        raise Invalid(
            f"User '{user.user_name}' has the role {role} in channel '{name}': a {scope} token"
            " would have more rights than its user"
        )
    return channel["id"]


@endpoint("GET", "/tokens/current", "The token this request came with",
          answers={200: "Token"}, errors=(404,))  # fmt: skip
def show_current():
    return shapes.token(accounts.get_token(get_db(), _current()))


@endpoint("DELETE", "/tokens/current", "Revoke the token this request came with (log out)",
          answers={204: None}, errors=(404,))  # fmt: skip
def revoke_current():
    accounts.revoke_token(get_db(), _current())
    return "", 204


@endpoint("GET", TOKEN, "One of your tokens (an admin: anybody's)",
          answers={200: "Token"}, errors=(403, 404))  # fmt: skip
def show(token_id: int):
    return shapes.token(_own_or_managing(token_id)[1])


@endpoint("DELETE", TOKEN, "Revoke a token (again: still 204)",
          answers={204: None}, errors=(403, 404))  # fmt: skip
def revoke(token_id: int):
    _own_or_managing(token_id)
    accounts.revoke_token(get_db(), token_id)
    return "", 204


@endpoint("POST", f"{TOKEN}/rotate", "A new secret for a token: same id, label,"
          " scope, channel and expiry; the old secret stops working", need="manage",
          answers={200: "NewToken"}, errors=(404, 409))  # fmt: skip
def rotate(token_id: int):
    _token(caller(), token_id)
    db = get_db()
    secret = accounts.rotate_token(db, token_id)
    return shapes.new_token(token_id, secret, accounts.get_token(db, token_id))
