"""Users, channels, memberships and tokens: their SQL and the rules that relate them.

One function, `role_in`, decides what any caller may do in any channel; every URL form of
every route goes through it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from werkzeug.security import generate_password_hash

from . import sessions, tokens
from .access import AccessCache
from .db import Connection, IntegrityError, OperationalError, Row, now, transaction
from .errors import Conflict, Invalid, NotFound, disk_full
from .password_cache import PasswordCache

ROLES = ("read", "write", "owner")
# A user token's scope; a channel token's is read or write. `manage` reaches as far as the
# owner role, and only it (or a password) may mint tokens and make channels.
SCOPES = ("read", "write", "manage")
CHANNEL_SCOPES = ("read", "write")
LABEL_LIMIT = 100  # characters of a token label
_RANKS = {"read": 1, "write": 2, "owner": 3, "manage": 3}
# Used with fullmatch: `$` would also match before a trailing newline ("dev\n").
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
# "t" would make /api/repo/t/<token>/... ambiguous with a channel named t; the others are
# words of the JSON API's paths, kept free for it.
RESERVED_CHANNELS = frozenset({
    "t", "api", "channels", "tokens", "account", "auth", "users", "mirrors", "system",
    "simple", "cran", "openapi.json", "docs",
})  # fmt: skip
DURATION = re.compile(r"(\d{1,6})([dhms])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
# Checked against when a user name is unknown, so a wrong name costs as long as a wrong password.
# Its password is random and unknown: no check against it succeeds, so none is cached either.
_DUMMY_HASH = generate_password_hash(secrets.token_urlsafe(32))
# Basic `user:password` on the API would otherwise cost a full scrypt check on every request.
_PASSWORDS = PasswordCache()


@dataclass(frozen=True)
class Identity:
    """Who a request acts as: a user, possibly through a token that narrows the user's rights."""

    user_id: int
    user_name: str
    is_admin: bool
    token_id: int | None = None
    token_channel_id: int | None = None
    token_scope: str | None = None

    def describe(self) -> str:
        return f"Token {self.token_id}" if self.token_id else f"User '{self.user_name}'"

    @property
    def manages(self) -> bool:
        """A password, or a user token of scope manage: what minting tokens and making or
        removing channels, members and mirrors takes."""
        return self.token_id is None or (
            self.token_scope == "manage" and self.token_channel_id is None
        )


ANONYMOUS = None


def rank(role: str | None) -> int:
    """How far a role or scope reaches: read < write < owner, and manage ranks like owner."""
    return _RANKS[role] if role else 0


# --- users -------------------------------------------------------------------------------


def create_user(db: Connection, name: str, password: str, admin: bool = False) -> int:
    if not USER_NAME.fullmatch(name):
        raise Invalid(f"Invalid user name '{name}': use letters, digits, '.', '_' or '-'")
    _check_new_password(password)
    try:
        with transaction(db):
            return db.execute(
                "INSERT INTO users (name, password_hash, is_admin, created) VALUES (?, ?, ?, ?)"
                " RETURNING id",
                (name, generate_password_hash(password), int(admin), now()),
            ).fetchone()[0]
    except IntegrityError:
        raise Conflict(f"User '{name}' already exists") from None


def _check_new_password(password: str) -> None:
    if len(password) < 8:
        raise Invalid("Password too short: use at least 8 characters")


def user_count(db: Connection) -> int:
    return db.execute("SELECT count(*) FROM users").fetchone()[0]


def get_user(db: Connection, name: str) -> Row:
    row = db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise NotFound(f"User '{name}' not found")
    return row


def _identity(row: Row, token: Row | None = None) -> Identity:
    return Identity(
        user_id=row["id"],
        user_name=row["name"],
        is_admin=bool(row["is_admin"]),
        token_id=token["id"] if token else None,
        token_channel_id=token["channel_id"] if token else None,
        token_scope=token["scope"] if token else None,
    )


def check_password(db: Connection, name: str, password: str) -> Identity | None:
    """The user with this name and password, or None; as slow for unknown names, and fast
    for a password found right a moment ago (repo.password_cache)."""
    row = db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
    good = _PASSWORDS.check(name, password, row["password_hash"] if row else _DUMMY_HASH)
    if row is None or not good or row["disabled"]:
        return None
    return _identity(row)


def list_users(db: Connection) -> list[Row]:
    """Every user by name, with how many channels they belong to and live tokens they hold."""
    return db.execute(
        "SELECT users.id, users.name, users.is_admin, users.disabled, users.created,"
        " (SELECT count(*) FROM memberships WHERE user_id = users.id) AS channels,"
        " (SELECT count(*) FROM tokens WHERE user_id = users.id AND revoked IS NULL) AS tokens"
        " FROM users ORDER BY users.name"
    ).fetchall()


def set_disabled(db: Connection, user_id: int, disabled: bool) -> None:
    """Disable or enable a user: a disabled user's password and tokens stop working on their
    next request and come back when enabled again; their web sessions end for good. The last
    enabled admin cannot be disabled."""
    with transaction(db):
        if disabled:
            _keep_an_admin(db, user_id)
        db.execute("UPDATE users SET disabled = ? WHERE id = ?", (int(disabled), user_id))
    if disabled:
        sessions.end_all(db, user_id)


def set_password(db: Connection, user_id: int, password: str) -> None:
    """Give a user a new password; their web sessions end (see session_user)."""
    _check_new_password(password)
    with transaction(db):
        db.execute(
            "UPDATE users SET password_hash = ? WHERE id = ?",
            (generate_password_hash(password), user_id),
        )


def set_admin(db: Connection, user_id: int, admin: bool) -> None:
    """Make a user an admin or not; the last enabled admin stays one."""
    with transaction(db):
        if not admin:
            _keep_an_admin(db, user_id)
        db.execute("UPDATE users SET is_admin = ? WHERE id = ?", (int(admin), user_id))


def delete_user(db: Connection, user_id: int) -> None:
    """Delete a user with their memberships, tokens and sessions; their uploads stay, without
    an uploader. Refused for the last admin and for a channel's only owner."""
    with transaction(db):
        _keep_an_admin(db, user_id)
        owned = db.execute(
            "SELECT channels.name FROM memberships JOIN channels ON channels.id = channel_id"
            " WHERE user_id = ? AND role = 'owner' AND NOT EXISTS (SELECT 1 FROM memberships"
            " AS other WHERE other.channel_id = memberships.channel_id AND other.role = 'owner'"
            " AND other.user_id != ?) ORDER BY channels.name",
            (user_id, user_id),
        ).fetchall()
        if owned:
            names = ", ".join(row["name"] for row in owned)
            raise Conflict(
                f"The user is the only owner of {names}: make another member owner first",
                code="last_owner",
            )
        db.execute("DELETE FROM users WHERE id = ?", (user_id,))


def _keep_an_admin(db: Connection, user_id: int) -> None:
    admins = db.execute("SELECT id FROM users WHERE is_admin = 1 AND disabled = 0").fetchall()
    if [row["id"] for row in admins] == [user_id]:
        raise Conflict("The server needs an admin: make another user admin first")


def _stamp(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def session_stamp(db: Connection, user_id: int) -> str:
    """A fingerprint of the user's password hash for a web session to carry, so that a new
    password ends every session made with the old one."""
    row = db.execute("SELECT password_hash FROM users WHERE id = ?", (user_id,)).fetchone()
    return _stamp(row["password_hash"])


def session_user(db: Connection, session_id: str, stamp: str) -> Identity | None:
    """The user a web session belongs to; None when the session was ended or has expired or
    its user is disabled (sessions.find_user), or the password changed since it began."""
    row = sessions.find_user(db, session_id)
    if row is None or not hmac.compare_digest(_stamp(row["password_hash"]), stamp):
        return None
    return _identity(row)


# --- channels ----------------------------------------------------------------------------


def check_channel_name(name: str) -> None:
    """Refuse a name that is not a channel name (invalid_name) or that the URLs need
    (reserved_name)."""
    if not NAME.fullmatch(name):
        raise Invalid(
            f"Invalid channel name '{name}': use lower-case letters, digits, '.', '_' or '-'",
            code="invalid_name",
        )
    if name in RESERVED_CHANNELS:
        raise Invalid(
            f"Channel name '{name}' is reserved: the server's URLs use it", code="reserved_name"
        )


def create_channel(db: Connection, name: str, owner_id: int, public: bool = False,
                   description: str = "") -> int:  # fmt: skip
    check_channel_name(name)
    try:
        with transaction(db):
            channel_id = db.execute(
                "INSERT INTO channels (name, public, created, description) VALUES (?, ?, ?, ?)"
                " RETURNING id",
                (name, int(public), now(), description),
            ).fetchone()[0]
            db.execute(
                "INSERT INTO memberships (channel_id, user_id, role) VALUES (?, ?, 'owner')",
                (channel_id, owner_id),
            )
    except IntegrityError:
        raise Conflict(f"Channel '{name}' already exists", code="exists") from None
    return channel_id


# Whether the channel mirrors an upstream (on either side), asked with the channel: a page of
# a channel that mirrors nothing needs no further query (repo.mirror.pypi_pages).
_MIRRORED = "EXISTS (SELECT 1 FROM mirrors WHERE mirrors.channel_id = channels.id) AS mirrored"


def find_channel(db: Connection, name: str, identity: Identity | None = None) -> Row | None:
    """The channel, and whether it mirrors anything (`mirrored`); with an identity, its
    membership role comes along in the same query (`member_role`), saving role_in a query on
    every request."""
    if identity is None:
        return db.execute(f"SELECT *, {_MIRRORED} FROM channels WHERE name = ?",
                          (name,)).fetchone()  # fmt: skip
    return db.execute(
        f"SELECT channels.*, memberships.role AS member_role, {_MIRRORED} FROM channels"
        " LEFT JOIN memberships ON memberships.channel_id = channels.id"
        " AND memberships.user_id = ? WHERE channels.name = ?",
        (identity.user_id, name),
    ).fetchone()


def grant(db: Connection, channel_id: int, user_id: int, role: str) -> None:
    if role not in ROLES:
        raise Invalid(f"Invalid role '{role}': use one of {', '.join(ROLES)}")
    with transaction(db):
        if role != "owner":
            _keep_an_owner(db, channel_id, user_id)
        db.execute(
            "INSERT INTO memberships (channel_id, user_id, role) VALUES (?, ?, ?)"
            " ON CONFLICT (channel_id, user_id) DO UPDATE SET role = excluded.role",
            (channel_id, user_id, role),
        )


def remove_member(db: Connection, channel_id: int, user_id: int) -> None:
    """Take a user out of a channel; their tokens lose the channel on their next request."""
    with transaction(db):
        _keep_an_owner(db, channel_id, user_id)
        db.execute(
            "DELETE FROM memberships WHERE channel_id = ? AND user_id = ?", (channel_id, user_id)
        )


def _keep_an_owner(db: Connection, channel_id: int, user_id: int) -> None:
    """Refuse to take the owner role from the channel's only owner: nobody but an admin
    could manage the channel any more."""
    owners = db.execute(
        "SELECT user_id FROM memberships WHERE channel_id = ? AND role = 'owner'", (channel_id,)
    ).fetchall()
    if [row["user_id"] for row in owners] == [user_id]:
        raise Conflict(
            "A channel needs an owner: make another member owner first", code="last_owner"
        )


def list_members(db: Connection, channel_id: int) -> list[Row]:
    return db.execute(
        "SELECT users.id, users.name, users.disabled, memberships.role FROM memberships"
        " JOIN users ON users.id = memberships.user_id WHERE memberships.channel_id = ?"
        " ORDER BY users.name",
        (channel_id,),
    ).fetchall()


# Each channel with its owners and how many members and packages it has.
_CHANNEL_COLUMNS = (
    "channels.*,"
    " (SELECT group_concat(users.name, ', ') FROM memberships"
    "  JOIN users ON users.id = memberships.user_id"
    "  WHERE memberships.channel_id = channels.id AND memberships.role = 'owner') AS owners,"
    " (SELECT count(*) FROM memberships WHERE channel_id = channels.id) AS members,"
    " (SELECT count(*) FROM packages WHERE channel_id = channels.id) AS packages,"
    " (SELECT count(*) FROM files WHERE channel_id = channels.id) AS file_count,"
    " (SELECT CAST(coalesce(sum(size), 0) AS BIGINT) FROM files"
    "  WHERE channel_id = channels.id) AS size_bytes"
)
_CHANNELS = f"SELECT {_CHANNEL_COLUMNS} FROM channels"


def all_channels(db: Connection) -> list[Row]:
    """Every channel by name, for admins."""
    return db.execute(f"{_CHANNELS} ORDER BY channels.name").fetchall()


def channel_summary(db: Connection, channel_id: int) -> Row:
    """One channel with what all_channels gives for each (owners, counts, size)."""
    return db.execute(f"{_CHANNELS} WHERE channels.id = ?", (channel_id,)).fetchone()


DESCRIPTION_LIMIT = 2000


def update_channel(db: Connection, channel_id: int, public: bool | None = None,
                   description: str | None = None) -> None:  # fmt: skip
    """Change a channel's privacy or description (None: leave it); index pages and their
    ETags change with its revision, since a page's answer depends on who may read it."""
    if description is not None and len(description) > DESCRIPTION_LIMIT:
        raise Invalid(f"Description too long: at most {DESCRIPTION_LIMIT} characters")
    with transaction(db):
        db.execute(
            "UPDATE channels SET public = coalesce(?, public),"
            " description = coalesce(?, description), revision = revision + 1 WHERE id = ?",
            (None if public is None else int(public), description, channel_id),
        )


def delete_channel(db: Connection, channel_id: int, force: bool = False) -> None:
    """Delete a channel with its members, channel tokens, packages, files and mirrors; one
    that still holds files only with `force`. Blobs go with the next `repo gc`."""
    with transaction(db):
        row = db.execute(
            "SELECT name, (SELECT count(*) FROM files WHERE channel_id = channels.id) AS files"
            " FROM channels WHERE id = ?",
            (channel_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"Channel {channel_id} not found")
        if row["files"] and not force:
            raise Conflict(
                f"Channel '{row['name']}' holds {row['files']} files: delete them first,"
                " or force the deletion",
                code="not_empty",
            )
        db.execute("DELETE FROM channels WHERE id = ?", (channel_id,))


def visible_channels(db: Connection, identity: Identity | None) -> list[dict]:
    """The channels `identity` may read, by name, each with its `role` there by role_in's
    rules (and `member_role`, its membership's): anonymous callers see the public ones, users
    also their own, admins all."""
    user_id = identity.user_id if identity is not ANONYMOUS else None
    admin = identity is not ANONYMOUS and identity.is_admin
    rows = db.execute(
        f"SELECT {_CHANNEL_COLUMNS}, (SELECT role FROM memberships"
        "  WHERE channel_id = channels.id AND user_id = ?) AS member_role"
        " FROM channels WHERE channels.public = 1 OR ? = 1"
        " OR channels.id IN (SELECT channel_id FROM memberships WHERE user_id = ?)"
        " ORDER BY channels.name",
        (user_id, int(admin), user_id),
    ).fetchall()
    return [{**row, "role": role} for row in rows if (role := role_in(db, identity, row))]


def _member_role(db: Connection, identity: Identity, channel: Row) -> str | None:
    if identity.is_admin:
        return "owner"
    if "member_role" in channel.keys():
        return channel["member_role"]
    row = db.execute(
        "SELECT role FROM memberships WHERE channel_id = ? AND user_id = ?",
        (channel["id"], identity.user_id),
    ).fetchone()
    return row["role"] if row else None


def role_in(db: Connection, identity: Identity | None, channel: Row) -> str | None:
    """What `identity` may do in `channel` right now: None, 'read', 'write' or 'owner'.

    A token never has more rights than its user has at the moment it is used; a channel token
    has none beyond what anybody has in any other channel.
    """
    public = "read" if channel["public"] else None
    if identity is ANONYMOUS:
        return public
    if identity.token_channel_id is not None and identity.token_channel_id != channel["id"]:
        return public
    role = _member_role(db, identity, channel)
    if identity.token_scope is not None:
        role = min(role, identity.token_scope, key=rank) if role else None
    return max(role, public, key=rank)


# --- tokens ------------------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """`90d`, `12h`, `30m` or `45s`."""
    match = DURATION.fullmatch(text or "")
    if not match:
        raise Invalid(f"Invalid duration '{text}': use a number and d, h, m or s, e.g. 90d")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def create_token(
    db: Connection,
    user_id: int,
    channel_id: int | None = None,
    scope: str | None = None,
    expires_in: timedelta | None = None,
    label: str = "",
) -> tuple[int, str]:
    """Make a token and return (id, secret); the secret is not kept and cannot be shown again.

    A user token without a scope is a `manage` one, as every user token was before scopes.
    """
    if channel_id is None:
        scope = scope or "manage"
        if scope not in SCOPES:
            raise Invalid(f"Invalid scope '{scope}': use read, write or manage")
    elif scope not in CHANNEL_SCOPES:
        raise Invalid(f"Invalid scope '{scope}' for a channel token: use read or write")
    with transaction(db):
        return _insert_token(db, user_id, channel_id, scope, expires_in, label)


def _insert_token(db: Connection, user_id: int, channel_id: int | None, scope: str,
                  expires_in: timedelta | None, label: str) -> tuple[int, str]:  # fmt: skip
    if len(label) > LABEL_LIMIT:
        raise Invalid(f"Label too long: at most {LABEL_LIMIT} characters")
    if expires_in is not None and expires_in.total_seconds() < 1:
        raise Invalid("Invalid expiry: at least 1 second (a token that never expires: none)")
    secret = tokens.generate()
    expires = None
    if expires_in is not None:
        expires = (datetime.now(UTC) + expires_in).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    token_id = db.execute(
        "INSERT INTO tokens (hash, user_id, channel_id, scope, label, created, expires)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (tokens.digest(secret), user_id, channel_id, scope, label, now(), expires),
    ).fetchone()[0]
    return token_id, secret


def login_token(db: Connection, user_id: int, label: str,
                expires_in: timedelta | None) -> tuple[int, str]:  # fmt: skip
    """A new `manage` user token for a login, revoking any live user token of the same user
    and label in the same transaction: logging in again never piles up secrets."""
    with transaction(db):
        db.execute(
            "UPDATE tokens SET revoked = ? WHERE user_id = ? AND label = ? AND channel_id IS NULL"
            " AND revoked IS NULL",
            (now(), user_id, label),
        )
        return _insert_token(db, user_id, None, "manage", expires_in, label)


def rotate_token(db: Connection, token_id: int) -> str:
    """Give a live token a new secret (same id, label, scope, channel and expiry); the old
    secret is refused from then on. Return the new one."""
    secret = tokens.generate()
    with transaction(db):
        cursor = db.execute(
            "UPDATE tokens SET hash = ? WHERE id = ? AND revoked IS NULL",
            (tokens.digest(secret), token_id),
        )
    if cursor.rowcount == 0:
        if get_token(db, token_id) is None:
            raise NotFound(f"Token {token_id} not found")
        raise Conflict(f"Token {token_id} has been revoked: create a new one")
    return secret


class TokenRefused(Exception):
    """A token that does not authenticate, with the reason to tell the client and the API's
    problem code for it."""

    def __init__(self, message: str, code: str = "token_invalid"):
        super().__init__(message)
        self.code = code


def check_token(db: Connection, secret: str) -> Identity:
    """The identity a token acts as; raises TokenRefused saying why not."""
    if not tokens.well_formed(secret):
        raise TokenRefused("Invalid token")
    # Looking up by the sha256 of the secret leaves no timing channel on the secret itself.
    token = db.execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens JOIN users ON users.id ="
                       " tokens.user_id WHERE tokens.hash = ?",
                       (tokens.digest(secret),)).fetchone()  # fmt: skip
    return _admitted(db, token)


# What check_token reads of a token and its user, under names no channel column has.
_TOKEN_COLUMNS = (
    "tokens.id AS token_id, tokens.user_id, tokens.channel_id AS token_channel_id,"
    " tokens.scope AS token_scope, tokens.revoked, tokens.expires, tokens.last_used,"
    " users.name AS user_name, users.is_admin, users.disabled"
)
_CHANNEL_KEYS = ("id", "name", "public", "revision", "created", "description", "member_role",
                 "mirrored")  # fmt: skip


_TOKEN_KEYS = ("token_id", "user_id", "token_channel_id", "token_scope", "revoked", "expires",
               "last_used", "user_name", "is_admin", "disabled")  # fmt: skip


def check_token_for_channel(
    db: Connection, secret: str, name: str, cache: AccessCache | None = None
) -> tuple[Identity, dict | None]:
    """check_token and find_channel(name, identity) in one query: what the WSGI fast path asks
    on every request, where a second round trip to PostgreSQL would cost more than the page.
    With a cache, the query's answer is kept while the access generation stands (access.py),
    and a request asks for that number only."""
    if not tokens.well_formed(secret):
        raise TokenRefused("Invalid token")
    digest = tokens.digest(secret)
    current = cache.generation(db) if cache is not None else 0
    kept = cache.get(current, digest, name) if cache is not None else None
    if kept is None:
        row = db.execute(
            f"SELECT {_TOKEN_COLUMNS}, channels.*, memberships.role AS member_role, {_MIRRORED}"
            " FROM tokens JOIN users ON users.id = tokens.user_id"
            " LEFT JOIN channels ON channels.name = ?"
            " LEFT JOIN memberships ON memberships.channel_id = channels.id"
            " AND memberships.user_id = tokens.user_id WHERE tokens.hash = ?",
            (name, digest),
        ).fetchone()
        if row is None:
            raise TokenRefused("Invalid token")
        token = {key: row[key] for key in _TOKEN_KEYS}
        channel = {key: row[key] for key in _CHANNEL_KEYS} if row["id"] is not None else None
        # Only a channel that exists: names that do not are the asker's to choose.
        if cache is not None and channel is not None:
            cache.put(current, digest, name, token, channel)
    else:
        token, channel = kept
    return _admitted(db, token), channel


def _admitted(db: Connection, token: Row | dict | None) -> Identity:
    """The identity of a token row of _TOKEN_COLUMNS, if it may act now; else TokenRefused."""
    if token is None:
        raise TokenRefused("Invalid token")
    if token["revoked"]:
        raise TokenRefused(f"Token {token['token_id']} has been revoked", "token_revoked")
    stamp = now()
    if token["expires"] and token["expires"] <= stamp:
        raise TokenRefused(f"Token {token['token_id']} has expired", "token_expired")
    if token["disabled"]:
        raise TokenRefused(f"Token {token['token_id']} belongs to a disabled user")
    _touch(db, token, stamp)
    return Identity(
        user_id=token["user_id"], user_name=token["user_name"], is_admin=bool(token["is_admin"]),
        token_id=token["token_id"], token_channel_id=token["token_channel_id"],
        token_scope=token["token_scope"],
    )  # fmt: skip


def _touch(db: Connection, token: Row | dict, stamp: str) -> None:
    # One write a minute per token is enough to say when it was last used.
    if token["last_used"] and token["last_used"][:16] == stamp[:16]:
        return
    if isinstance(token, dict):  # kept by an AccessCache: the next request knows of this one
        token["last_used"] = stamp
    try:
        with transaction(db):
            db.execute("UPDATE tokens SET last_used = ? WHERE id = ?",
                       (stamp, token["token_id"]))  # fmt: skip
    except OperationalError as error:
        # Bookkeeping must not stop a read: on a full disk the install still works.
        if not disk_full(error):
            raise


def list_tokens(db: Connection, user_id: int | None = None) -> list[dict]:
    """Tokens (of one user, or all) as `repo token list --json` and the API show them."""
    rows = db.execute(
        f"{_TOKENS} WHERE CAST(? AS BIGINT) IS NULL OR tokens.user_id = ? ORDER BY tokens.id",
        (user_id, user_id),
    ).fetchall()
    return [_token_fields(row) for row in rows]


_TOKENS = (
    "SELECT tokens.*, users.name AS user, channels.name AS channel FROM tokens"
    " JOIN users ON users.id = tokens.user_id"
    " LEFT JOIN channels ON channels.id = tokens.channel_id"
)
TOKEN_FIELDS = ("id", "user", "channel", "scope", "label", "created", "last_used", "expires",
                "revoked")  # fmt: skip


def _token_fields(row: Row) -> dict:
    return {key: row[key] for key in TOKEN_FIELDS}


def get_token(db: Connection, token_id: int) -> dict | None:
    """One token as list_tokens shows it, with its owner's `user_id`; None if there is none
    (an id past SQLite's integers too, which could not even be looked up)."""
    if not 0 < token_id < 2**63:
        return None
    row = db.execute(f"{_TOKENS} WHERE tokens.id = ?", (token_id,)).fetchone()
    return None if row is None else {**_token_fields(row), "user_id": row["user_id"]}


def revoke_own_token(db: Connection, user_id: int, token_id: int) -> None:
    """Revoke one of the user's own tokens; another user's token is not found, like a missing
    one, so token ids tell nobody anything."""
    mine = db.execute(
        "SELECT 1 FROM tokens WHERE id = ? AND user_id = ?", (token_id, user_id)
    ).fetchone()
    if mine is None:
        raise NotFound(f"Token {token_id} not found")
    revoke_token(db, token_id)


def revoke_token(db: Connection, token_id: int) -> None:
    with transaction(db):
        cursor = db.execute(
            "UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL", (now(), token_id)
        )
    if (
        cursor.rowcount == 0
        and not db.execute("SELECT 1 FROM tokens WHERE id = ?", (token_id,)).fetchone()
    ):
        raise NotFound(f"Token {token_id} not found")
