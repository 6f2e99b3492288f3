"""Tokens over the JSON API: who may mint which, the channel tokens' limits, `current`,
revoking (idempotent) and rotating."""

from __future__ import annotations

import pytest

from repo import accounts
from repo.errors import Invalid

from .apicalls import problem


@pytest.fixture
def alice(repo):
    """alice owns the private channel 'ch'; bob reads it; carol is nobody there."""
    made = repo.owner_with_channel("alice", "ch")
    bob, carol = repo.user("bob"), repo.user("carol")
    repo.db.execute("INSERT INTO memberships VALUES (?, ?, 'read')", (made.channel_id, bob))
    return {"id": made.user_id, "manage": repo.token(made.user_id), "bob": repo.token(bob),
            "carol": repo.token(carol), "read": repo.token(made.user_id, scope="read"),
            "channel": made.channel_id}  # fmt: skip


@pytest.mark.parametrize("scope", ["read", "write", "manage"])
def test_a_manage_token_mints_user_tokens_of_every_scope(api, alice, scope):
    body = {"scope": scope, "label": "laptop", "expires_in": "90d"}

    made = api("POST", "/api/tokens", 201, token=alice["manage"], json=body).get_json()

    shown = api("GET", f"/api/tokens/{made['id']}", 200, token=alice["manage"]).get_json()
    assert (shown["scope"], shown["label"], shown["channel"]) == (scope, "laptop", None)
    assert shown["expires"] == made["expires"] and shown["expires"] is not None
    account = api("GET", "/api/account", 200, token=made["token"]).get_json()
    assert account["token"]["id"] == made["id"]


def test_a_channel_token_is_read_or_write_on_a_channel_its_user_may_use(api, alice):
    made = api("POST", "/api/tokens", 201, token=alice["manage"],
               json={"scope": "write", "channel": "ch"}).get_json()  # fmt: skip

    assert (made["channel"], made["scope"], made["expires"]) == ("ch", "write", None)
    wider = api("POST", "/api/tokens", 400, token=alice["manage"],
                json={"scope": "manage", "channel": "ch"})  # fmt: skip
    assert problem(wider)[1] == "Invalid scope 'manage' for a channel token: use read or write"


def test_a_channel_token_may_not_outrank_its_user(api, alice):
    response = api("POST", "/api/tokens", 400, token=alice["bob"],
                   json={"scope": "write", "channel": "ch"})  # fmt: skip

    assert problem(response)[1] == (
        "User 'bob' has the role read in channel 'ch': a write token would have more rights"
        " than its user"
    )
    api("POST", "/api/tokens", 201, token=alice["bob"], json={"scope": "read", "channel": "ch"})


def test_a_token_for_a_channel_the_user_cannot_see_is_not_found(api, alice):
    for channel in ("ch", "nope"):
        response = api("POST", "/api/tokens", 404, token=alice["carol"],
                       json={"scope": "read", "channel": channel})  # fmt: skip
        assert problem(response) == ("not_found", f"Channel '{channel}' not found")


def test_a_token_needs_a_scope(api, alice):
    response = api("POST", "/api/tokens", 400, token=alice["manage"], json={"label": "x"})

    assert problem(response)[1] == "Invalid body: 'scope' is a required property"


@pytest.mark.parametrize("kind", ["read", "channel-write"])
def test_a_read_or_write_token_cannot_mint_tokens(api, repo, alice, kind):
    secret = alice["read"] if kind == "read" else repo.token(alice["id"], alice["channel"], "write")

    response = api("POST", "/api/tokens", 403, token=secret, json={"scope": "read"})

    assert problem(response)[0] == "forbidden"
    assert "takes a password or a user token of scope manage" in problem(response)[1]


def test_a_password_mints_tokens(api, alice):
    api("POST", "/api/tokens", 201, password=("alice", "alice-password"), json={"scope": "read"})


def test_only_an_admin_mints_for_somebody_else(api, repo, alice):
    repo.user("root", admin=True)
    refused = api("POST", "/api/tokens", 403, token=alice["manage"],
                  json={"scope": "read", "user": "bob"})  # fmt: skip
    assert "may act only for themselves" in problem(refused)[1]

    root = repo.token(repo.db.execute("SELECT id FROM users WHERE name = 'root'").fetchone()[0])
    made = api("POST", "/api/tokens", 201, token=root,
               json={"scope": "read", "user": "bob", "channel": "ch"}).get_json()  # fmt: skip
    assert api("GET", "/api/account", 200, token=made["token"]).get_json()["username"] == "bob"
    listed = api("GET", "/api/tokens?user=bob", 200, token=root).get_json()
    assert [token["user"] for token in listed["items"]] == ["bob", "bob"]
    api("GET", "/api/tokens?user=nobody", 404, token=root)


def test_the_token_list_is_your_own_and_pages(api, alice):
    listed = api("GET", "/api/tokens?limit=1&offset=1", 200, token=alice["manage"]).get_json()

    assert listed["total_count"] == 2 and len(listed["items"]) == 1
    assert listed["items"][0]["scope"] == "read"
    api("GET", "/api/tokens?limit=1001", 400, token=alice["manage"])
    api("GET", "/api/tokens?offset=-1", 400, token=alice["manage"])


def test_any_token_reads_and_revokes_itself(api, alice):
    shown = api("GET", "/api/tokens/current", 200, token=alice["read"]).get_json()
    assert shown["scope"] == "read"

    api("DELETE", "/api/tokens/current", 204, token=alice["read"])

    assert problem(api("GET", "/api/account", 401, token=alice["read"]))[0] == "token_revoked"


def test_a_password_has_no_current_token(api, alice):
    response = api("GET", "/api/tokens/current", 404, password=("alice", "alice-password"))

    assert "authenticated by password" in problem(response)[1]


def test_another_users_token_is_not_found_and_a_read_token_sees_only_itself(api, alice):
    own = api("GET", "/api/tokens/current", 200, token=alice["bob"]).get_json()["id"]

    api("GET", f"/api/tokens/{own}", 404, token=alice["manage"])
    api("DELETE", f"/api/tokens/{own}", 404, token=alice["manage"])
    mine = api("GET", "/api/tokens/current", 200, token=alice["read"]).get_json()["id"]
    api("GET", f"/api/tokens/{mine}", 200, token=alice["read"])
    api("GET", f"/api/tokens/{mine - 1}", 403, token=alice["read"])


def test_revoking_twice_is_204_and_a_missing_token_404(api, alice):
    made = api("POST", "/api/tokens", 201, token=alice["manage"], json={"scope": "read"})
    token_id = made.get_json()["id"]

    api("DELETE", f"/api/tokens/{token_id}", 204, token=alice["manage"])
    api("DELETE", f"/api/tokens/{token_id}", 204, token=alice["manage"])

    assert api("GET", f"/api/tokens/{token_id}", 200, token=alice["manage"]).get_json()["revoked"]
    api("DELETE", "/api/tokens/999", 404, token=alice["manage"])


def test_rotating_keeps_the_token_but_not_its_secret(api, alice):
    body = {"scope": "read", "channel": "ch", "label": "ci", "expires_in": "1d"}
    old = api("POST", "/api/tokens", 201, token=alice["manage"], json=body).get_json()

    new = api("POST", f"/api/tokens/{old['id']}/rotate", 200, token=alice["manage"]).get_json()

    assert {**new, "token": None} == {**old, "token": None} and new["token"] != old["token"]
    api("GET", "/api/account", 401, token=old["token"])
    api("GET", "/api/account", 200, token=new["token"])
    api("DELETE", f"/api/tokens/{old['id']}", 204, token=alice["manage"])
    rotated = api("POST", f"/api/tokens/{old['id']}/rotate", 409, token=alice["manage"])
    assert problem(rotated)[1] == f"Token {old['id']} has been revoked: create a new one"
    api("POST", "/api/tokens/999/rotate", 404, token=alice["manage"])


def test_an_id_past_sqlites_integers_or_a_non_ascii_digit_is_a_clear_4xx(api, alice):
    for method in ("GET", "DELETE"):
        refused = api(method, f"/api/tokens/{10**23}", 404, token=alice["manage"])
        assert problem(refused) == ("not_found", f"Token {10**23} not found")
    api("POST", f"/api/tokens/{10**23}/rotate", 404, token=alice["manage"])
    for query in ("offset=%C2%B2", "limit=%C2%B2"):
        response = api("GET", f"/api/channels?{query}", 400, token=alice["manage"])
        assert "use a whole number" in problem(response)[1]


@pytest.mark.parametrize(("body", "detail"), [
    ({"scope": "read", "expires_in": "0s"}, "Invalid expiry: at least 1 second"),
    ({"scope": "read", "label": "x" * 101}, "Invalid body at 'label': must satisfy maxLength"),
])  # fmt: skip
def test_a_token_already_expired_or_with_a_long_label_is_refused(api, alice, body, detail):
    response = api("POST", "/api/tokens", 400, token=alice["manage"], json=body)
    assert problem(response)[1].startswith(detail)


def test_every_way_of_making_a_token_keeps_the_label_limit(repo, alice):
    with pytest.raises(Invalid, match="Label too long: at most 100 characters"):
        accounts.create_token(repo.db, alice["id"], label="x" * 101)
