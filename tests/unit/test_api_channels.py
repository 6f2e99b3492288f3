"""Channels and their members over the JSON API: who sees which, making one (reserved and
invalid names, here and in the local command), its settings, deleting it, and its members."""

from __future__ import annotations

import pytest

from repo import accounts
from repo.errors import Invalid

from .apicalls import problem
from .builders import send, token_auth, twine_form


@pytest.fixture
def world(repo):
    """alice owns 'priv' (private, bob writes) and 'pub' (public); carol is in neither."""
    alice, bob, carol = repo.user("alice"), repo.user("bob"), repo.user("carol")
    priv = repo.channel("priv", alice)
    repo.channel("pub", alice, public=True)
    accounts.grant(repo.db, priv, bob, "write")
    return {"alice": repo.token(alice), "bob": repo.token(bob), "carol": repo.token(carol),
            "alice-read": repo.token(alice, scope="read"),
            "priv-write": repo.token(alice, priv, "write")}  # fmt: skip


def names(response) -> list[str]:
    return [channel["name"] for channel in response.get_json()["items"]]


def test_each_caller_lists_the_channels_it_may_read(api, world):
    assert names(api("GET", "/api/channels", 200)) == ["pub"]
    assert names(api("GET", "/api/channels", 200, token=world["carol"])) == ["pub"]
    assert names(api("GET", "/api/channels", 200, token=world["bob"])) == ["priv", "pub"]
    mine = api("GET", "/api/channels?mine=1", 200, token=world["carol"])
    assert names(mine) == []
    assert names(api("GET", "/api/channels?q=PU", 200, token=world["alice"])) == ["pub"]
    api("GET", "/api/channels?mine=yes", 400)


def test_a_channel_shows_its_counts_urls_and_the_callers_role(api, world):
    send(api.client, "POST", "/api/repo/priv/", headers=token_auth(world["bob"]),
         data=twine_form())  # fmt: skip

    body = api("GET", "/api/channels/priv", 200, token=world["bob"]).get_json()

    assert (body["my_role"], body["privacy"], body["description"]) == ("write", "private", "")
    assert (body["package_count"], body["file_count"]) == (1, 1) and body["size_bytes"] > 0
    assert body["urls"] == {"upload": "http://localhost/api/repo/priv",
                            "simple": "http://localhost/api/repo/priv/simple/",
                            "cran": "http://localhost/api/repo/priv/cran"}  # fmt: skip
    assert api("GET", "/api/channels/pub", 200).get_json()["my_role"] == "read"


def test_a_private_channel_is_401_to_nobody_and_404_to_strangers(api, world):
    anonymous = api("GET", "/api/channels/priv", 401)
    assert problem(anonymous) == ("auth_required", "Credentials required")
    assert problem(api("GET", "/api/channels/priv", 404, token=world["carol"])) == (
        "not_found",
        "Channel 'priv' not found",
    )
    api("GET", "/api/channels/nope", 404, token=world["alice"])


def test_making_a_channel_answers_201_with_its_place(api, world):
    body = {"name": "ml", "privacy": "public", "description": "Models"}

    response = api("POST", "/api/channels", 201, token=world["carol"], json=body)

    assert response.headers["Location"] == "/api/channels/ml"
    made = response.get_json()
    assert (made["name"], made["privacy"], made["description"], made["my_role"]) == (
        "ml", "public", "Models", "owner",
    )  # fmt: skip
    private = api("POST", "/api/channels", 201, token=world["carol"], json={"name": "x"})
    assert private.get_json()["privacy"] == "private"
    taken = api("POST", "/api/channels", 409, token=world["bob"], json={"name": "ml"})
    assert problem(taken) == ("exists", "Channel 'ml' already exists")


@pytest.mark.parametrize("name", sorted(accounts.RESERVED_CHANNELS))
def test_a_reserved_name_is_refused_by_the_api_and_locally(api, repo, world, name):
    response = api("POST", "/api/channels", 400, token=world["alice"], json={"name": name})

    assert problem(response) == (
        "reserved_name",
        f"Channel name '{name}' is reserved: the server's URLs use it",
    )
    with pytest.raises(Invalid, match="is reserved") as refused:
        accounts.create_channel(repo.db, name, 1)
    assert refused.value.code == "reserved_name"


@pytest.mark.parametrize("name", ["Upper", "-dash", "a b", "x" * 64])
def test_an_invalid_name_is_refused(api, world, name):
    response = api("POST", "/api/channels", 400, token=world["alice"], json={"name": name})

    assert problem(response)[0] in ("invalid_name", "validation_error")


@pytest.mark.parametrize("who", ["alice-read", "priv-write"])
def test_only_a_manage_token_or_password_makes_channels(api, world, who):
    api("POST", "/api/channels", 403, token=world[who], json={"name": "ml"})


def test_the_owner_changes_privacy_and_description(api, world):
    body = {"privacy": "public", "description": "Now open"}

    changed = api("PATCH", "/api/channels/priv", 200, token=world["alice"], json=body).get_json()

    assert (changed["privacy"], changed["description"]) == ("public", "Now open")
    assert api("GET", "/api/channels/priv", 200).get_json()["description"] == "Now open"
    api("PATCH", "/api/channels/priv", 400, token=world["alice"], json={})
    api("PATCH", "/api/channels/priv", 400, token=world["alice"], json={"privacy": "secret"})


@pytest.mark.parametrize(("who", "status"), [("bob", 403), ("alice-read", 403),
                                             ("priv-write", 403), ("carol", 404)])  # fmt: skip
def test_who_is_not_an_owner_cannot_change_a_channel(api, world, who, status):
    api("PATCH", "/api/channels/priv", status, token=world[who], json={"privacy": "public"})
    api("DELETE", "/api/channels/priv", status, token=world[who])
    api("GET", "/api/channels/priv/members", status, token=world[who])


def test_a_channel_with_files_is_deleted_only_with_force(api, world):
    send(api.client, "POST", "/api/repo/priv/", headers=token_auth(world["bob"]),
         data=twine_form())  # fmt: skip

    refused = api("DELETE", "/api/channels/priv", 409, token=world["alice"])
    assert problem(refused)[0] == "not_empty"
    api("DELETE", "/api/channels/priv?force=1", 204, token=world["alice"])

    api("GET", "/api/channels/priv", 404, token=world["alice"])
    api("GET", "/api/account", 401, token=world["priv-write"])  # its channel token went too
    api("DELETE", "/api/channels/pub", 204, token=world["alice"])


def test_members_are_listed_set_and_removed_but_the_last_owner_stays(api, world):
    url = "/api/channels/priv/members"
    listed = api("GET", url, 200, token=world["alice"]).get_json()
    assert listed["items"] == [{"user": "alice", "role": "owner"}, {"user": "bob", "role": "write"}]

    set_role = api("PUT", f"{url}/carol", 200, token=world["alice"], json={"role": "read"})
    assert set_role.get_json() == {"user": "carol", "role": "read"}
    api("DELETE", f"{url}/carol", 204, token=world["alice"])
    api("DELETE", f"{url}/carol", 404, token=world["alice"])
    api("PUT", f"{url}/nobody", 404, token=world["alice"], json={"role": "read"})
    api("PUT", f"{url}/bob", 400, token=world["alice"], json={"role": "admin"})

    last = api("DELETE", f"{url}/alice", 409, token=world["alice"])
    assert problem(last)[0] == "last_owner"
    demoted = api("PUT", f"{url}/alice", 409, token=world["alice"], json={"role": "read"})
    assert problem(demoted)[0] == "last_owner"
