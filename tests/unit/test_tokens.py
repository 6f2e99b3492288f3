"""Tokens: their format and checksum, how they are stored, used, listed and revoked."""

from __future__ import annotations

import hashlib
import re
import string
from datetime import timedelta
from pathlib import Path

import pytest

from repo import accounts, tokens
from repo.accounts import SCOPES, TokenRefused, check_token, create_token, parse_duration
from repo.db import get_db
from repo.errors import Invalid, NotFound

from ..conftest import dump
from .builders import send, token_auth


def test_token_has_the_prefix_and_only_path_safe_characters():
    for _ in range(200):
        secret = tokens.generate()
        assert re.fullmatch(r"rp-[A-Za-z0-9]+", secret), secret
        assert tokens.well_formed(secret)


def test_token_body_is_43_base62_characters_from_the_secrets_module(monkeypatch):
    # The README's claim: 256 random bits, i.e. 43 characters of 62 (43 * log2(62) = 256.03).
    secret = tokens.generate()
    assert len(secret) == len("rp-") + 43 + 6
    seen = set("".join(tokens.generate()[3:46] for _ in range(300)))
    assert seen == set(string.ascii_letters + string.digits)
    monkeypatch.setattr(tokens.secrets, "choice", lambda alphabet: "Q")
    assert tokens.generate()[3:46] == "Q" * 43


def one_character_typos(secret: str):
    for position in range(len(tokens.PREFIX), len(secret)):
        for character in tokens.ALPHABET:
            if character != secret[position]:
                yield secret[:position] + character + secret[position + 1 :]


def test_checksum_refuses_every_one_character_typo():
    for _ in range(5):
        secret = tokens.generate()
        assert not any(tokens.well_formed(typo) for typo in one_character_typos(secret))


def test_checksum_refuses_two_swapped_neighbours():
    secret = tokens.generate()
    for i in range(len(tokens.PREFIX), len(secret) - 1):
        swapped = secret[:i] + secret[i + 1] + secret[i] + secret[i + 2 :]
        assert swapped == secret or not tokens.well_formed(swapped)


@pytest.mark.parametrize(
    "text",
    ["", "rp-", "xx-" + "a" * 49, "rp-" + "a" * 48, "rp-" + "a" * 50, "rp_" + "a" * 49,
     "rp-" + "a" * 48 + "!", "rp-" + "\u00e9" * 49],
)  # fmt: skip
def test_malformed_token_is_not_well_formed(text):
    assert not tokens.well_formed(text)


def test_mistyped_token_is_refused_without_a_database_lookup(app, repo):
    user_id = repo.user("alice")
    secret = repo.token(user_id)
    mistyped = next(one_character_typos(secret))
    statements: list[str] = []
    db = get_db()
    db.set_trace_callback(statements.append)

    with pytest.raises(TokenRefused, match="^Invalid token$"):
        check_token(db, mistyped)

    db.set_trace_callback(None)
    assert statements == []


def made_tokens(repo) -> list[str]:
    user_id = repo.user("alice")
    channel_id = repo.channel("ch", user_id)
    return [repo.token(user_id), repo.token(user_id, channel_id, "write", label="ci")]


def test_database_holds_only_the_sha256_of_a_token(app, repo):
    secrets = made_tokens(repo)
    db = get_db()

    hashes = [row["hash"] for row in db.execute("SELECT hash FROM tokens ORDER BY id")]

    assert hashes == [hashlib.sha256(secret.encode()).hexdigest() for secret in secrets]
    rows = dump(db)
    for secret in secrets:
        assert secret not in rows and secret[len(tokens.PREFIX) :] not in rows


# The bytes of SQLite's own files, its WAL too; PostgreSQL's are the server's.
@pytest.mark.embedded_only
def test_the_database_files_never_hold_a_token(app, repo):
    secrets = made_tokens(repo)

    database = Path(app.config["DATABASE"])
    raw = b"".join(path.read_bytes() for path in database.parent.glob(database.name + "*"))
    for secret in secrets:
        assert secret.encode() not in raw
        assert secret[len(tokens.PREFIX) :].encode() not in raw


def test_using_a_token_records_when(app, client, repo):
    made = repo.owner_with_channel("alice", "ch")
    token_id, secret = create_token(get_db(), made.user_id, made.channel_id, "read")
    db = get_db()
    assert accounts.list_tokens(db)[0]["last_used"] is None

    assert (
        send(client, "GET", "/api/repo/ch/simple/", headers=token_auth(secret)).status_code == 200
    )

    first = db.execute("SELECT last_used FROM tokens WHERE id = ?", (token_id,)).fetchone()[0]
    assert first is not None and first.endswith("Z")
    db.execute("UPDATE tokens SET last_used = '2000-01-01T00:00:00.000000Z'")

    check_token(db, secret)

    assert accounts.list_tokens(db)[0]["last_used"] >= first


def test_token_list_shows_what_a_token_may_do_but_never_its_secret(app, repo):
    user_id = repo.user("alice")
    channel_id = repo.channel("ch", user_id)
    other = repo.user("bob")
    repo.token(user_id, label="laptop")
    repo.token(user_id, channel_id, "read", expires_in=timedelta(days=90), label="ci")
    repo.token(other)
    db = get_db()

    listed = accounts.list_tokens(db, user_id)

    assert [set(entry) for entry in listed] == [
        {"id", "user", "channel", "scope", "label", "created", "last_used", "expires", "revoked"}
    ] * 2
    assert [(t["user"], t["channel"], t["scope"], t["label"]) for t in listed] == [
        ("alice", None, "manage", "laptop"),
        ("alice", "ch", "read", "ci"),
    ]
    assert listed[0]["expires"] is None and listed[1]["expires"] > listed[1]["created"]
    assert [t["user"] for t in accounts.list_tokens(db)] == ["alice", "alice", "bob"]


def test_revoked_token_is_refused_and_revoking_again_is_harmless(app, repo):
    user_id = repo.user("alice")
    token_id, secret = create_token(get_db(), user_id)
    db = get_db()
    check_token(db, secret)

    accounts.revoke_token(db, token_id)
    revoked = accounts.list_tokens(db)[0]["revoked"]
    accounts.revoke_token(db, token_id)

    assert revoked is not None and accounts.list_tokens(db)[0]["revoked"] == revoked
    with pytest.raises(TokenRefused, match=f"^Token {token_id} has been revoked$"):
        check_token(db, secret)


def test_revoking_a_missing_token_is_not_found(app):
    with pytest.raises(NotFound, match="^Token 99 not found$"):
        accounts.revoke_token(get_db(), 99)


def test_expired_token_is_refused(app, repo):
    user_id = repo.user("alice")
    secret = repo.expired_token(user_id)
    token_id = get_db().execute("SELECT max(id) FROM tokens").fetchone()[0]
    with pytest.raises(TokenRefused, match=f"^Token {token_id} has expired$"):
        check_token(get_db(), secret)


@pytest.mark.parametrize(
    ("channel", "scope", "message"),
    [
        (True, None, "Invalid scope 'None' for a channel token: use read or write"),
        (True, "manage", "Invalid scope 'manage' for a channel token: use read or write"),
        (True, "owner", "Invalid scope 'owner' for a channel token: use read or write"),
        (False, "owner", "Invalid scope 'owner': use read, write or manage"),
    ],
)
def test_token_scope_must_fit_its_kind(app, repo, channel, scope, message):
    user_id = repo.user("alice")
    channel_id = repo.channel("ch", user_id) if channel else None
    with pytest.raises(Invalid, match=f"^{re.escape(message)}"):
        create_token(get_db(), user_id, channel_id, scope)


@pytest.mark.parametrize(("scope", "stored"), [(None, "manage"), *((s, s) for s in SCOPES)])
def test_a_user_token_has_the_scope_asked_for_and_manage_by_default(app, repo, scope, stored):
    user_id = repo.user("alice")
    _, secret = create_token(get_db(), user_id, scope=scope)

    identity = check_token(get_db(), secret)

    assert identity.token_scope == stored
    assert identity.manages == (stored == "manage")
    assert accounts.list_tokens(get_db())[0]["scope"] == stored


@pytest.mark.parametrize(
    ("text", "duration"),
    [
        ("90d", timedelta(days=90)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("0d", timedelta(0)),
        ("999999d", timedelta(days=999999)),
    ],
)
def test_parse_duration_reads_a_number_and_a_unit(text, duration):
    assert parse_duration(text) == duration


@pytest.mark.parametrize(
    "text", ["", "90", "d", "1w", "1.5d", "-1d", " 1d", "1d ", "1D", "1000000d", "1d2h", None]
)
def test_parse_duration_refuses_anything_else(text):
    with pytest.raises(Invalid, match="^Invalid duration .*: use a number and d, h, m or s"):
        parse_duration(text)
