"""The tokens page: a new token's secret is shown once and stored only as a hash; a channel
token never looks like more than its maker's role; only your own tokens can be revoked."""

from __future__ import annotations

import re

import pytest

from repo import accounts, tokens
from repo.db import get_db

from .builders import send, token_auth
from .webui import text

pytestmark = pytest.mark.usefixtures("fast_passwords")

SECRET = re.compile(r'<code id="secret">(rp-[A-Za-z0-9]+)</code>')


@pytest.fixture
def team(repo):
    """alice owns 'ch'; rita may only read there; bob has a token of his own."""
    made = repo.owner_with_channel("alice", "ch")
    accounts.grant(get_db(), made.channel_id, repo.user("rita"), "read")
    repo.token(repo.user("bob"), label="bobs")
    return made


def make(visitor, **form) -> tuple[str, object]:
    response = visitor.post("/tokens", **{"expires": "30d", "label": "", **form})
    match = SECRET.search(text(response))
    return (match[1] if match else ""), response


def test_channel_token_is_shown_once_and_stored_as_a_hash(team, visitor):
    visitor.login("alice")
    secret, response = make(visitor, kind="channel", channel="ch", scope="write", label="ci")
    assert response.status_code == 200 and secret
    assert response.headers["Cache-Control"] == "no-store"
    assert f"-p {secret}" in text(response)  # twine, with the token filled in
    row = get_db().execute("SELECT * FROM tokens WHERE label = 'ci'").fetchone()
    assert (row["scope"], row["hash"]) == ("write", tokens.digest(secret))
    assert secret not in str(tuple(row))
    listing = text(visitor.get("/tokens"))
    assert "ci" in listing and secret not in listing and secret[:12] not in listing
    with visitor.client.session_transaction() as session:
        assert secret not in str(dict(session))


def test_new_token_works_against_the_api(team, client, visitor):
    visitor.login("alice")
    secret, _ = make(visitor, kind="channel", channel="ch", scope="read")
    assert (
        send(client, "GET", "/api/repo/ch/simple/", headers=token_auth(secret)).status_code == 200
    )


def test_user_token_with_expiry(team, visitor):
    visitor.login("alice")
    secret, response = make(visitor, kind="user", expires="7d", label="mine")
    assert secret and "user token" in text(response)
    row = get_db().execute("SELECT * FROM tokens WHERE label = 'mine'").fetchone()
    assert row["channel_id"] is None and row["expires"] is not None


def test_never_expiring_token(team, visitor):
    visitor.login("alice")
    make(visitor, kind="user", expires="never", label="forever")
    assert (
        get_db().execute("SELECT expires FROM tokens WHERE label = 'forever'").fetchone()[0] is None
    )


@pytest.mark.parametrize(
    ("who", "form", "status", "message"),
    [("rita", {"channel": "ch", "scope": "write"}, 403, "role write"),
     ("bob", {"channel": "ch", "scope": "read"}, 404, "Channel &#39;ch&#39; not found"),
     ("alice", {"channel": "ch", "scope": "owner"}, 400, "Choose the scope"),
     ("alice", {"channel": "ch", "scope": "read", "expires": "soon"}, 400, "Invalid duration"),
     ("alice", {"channel": "ch", "scope": "read", "label": "x" * 101}, 400, "Label too long")],
)  # fmt: skip
def test_refused_token_comes_back_with_why(team, visitor, who, form, status, message):
    visitor.login(who)
    count = get_db().execute("SELECT count(*) FROM tokens").fetchone()[0]
    secret, response = make(visitor, kind="channel", **form)
    assert response.status_code == status and not secret
    assert message in text(response)
    assert get_db().execute("SELECT count(*) FROM tokens").fetchone()[0] == count


def test_list_shows_only_your_own_tokens(team, visitor):
    visitor.login("alice")
    make(visitor, kind="user", label="alices")
    page = text(visitor.get("/tokens"))
    assert "alices" in page and "bobs" not in page


def test_revoked_token_stops_working(team, client, visitor):
    visitor.login("alice")
    secret, _ = make(visitor, kind="user", label="temp")
    token_id = get_db().execute("SELECT id FROM tokens WHERE label = 'temp'").fetchone()[0]
    assert visitor.post(f"/tokens/{token_id}/revoke").status_code == 303
    response = send(client, "GET", "/api/repo/ch/simple/", headers=token_auth(secret))
    assert response.status_code == 401
    assert "revoked" in text(visitor.get("/tokens"))


def test_revoking_another_users_token_is_not_found(team, client, visitor):
    bobs = get_db().execute("SELECT id FROM tokens WHERE label = 'bobs'").fetchone()[0]
    visitor.login("alice")
    response = visitor.post(f"/tokens/{bobs}/revoke")
    assert response.status_code == 404
    assert (
        get_db().execute("SELECT revoked FROM tokens WHERE id = ?", (bobs,)).fetchone()[0] is None
    )
    assert visitor.post("/tokens/99999/revoke").status_code == 404
