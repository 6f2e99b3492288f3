"""The admin's side of the JSON API: users (admins only, and only with a password or a
manage token) and a channel's upstreams (its owners; never the upstream's password)."""

from __future__ import annotations

import pytest

from .apicalls import problem


@pytest.fixture
def world(repo, fast_passwords):
    root = repo.user("root", admin=True)
    alice = repo.user("alice")
    repo.channel("ch", alice)
    return {"root": repo.token(root), "root-read": repo.token(root, scope="read"),
            "alice": repo.token(alice)}  # fmt: skip


def test_an_admin_lists_makes_changes_and_deletes_users(api, world):
    made = api("POST", "/api/users", 201, token=world["root"],
               json={"name": "bob", "password": "bob-password"})  # fmt: skip
    assert made.headers["Location"] == "/api/users/bob"
    assert made.get_json() == {"name": "bob", "is_admin": False, "disabled": False,
                               "created": made.get_json()["created"], "channels": 0,
                               "tokens": 0}  # fmt: skip
    listed = api("GET", "/api/users", 200, token=world["root"]).get_json()
    assert [user["name"] for user in listed["items"]] == ["alice", "bob", "root"]

    change = {"is_admin": True, "disabled": True, "password": "new-password"}
    changed = api("PATCH", "/api/users/bob", 200, token=world["root"], json=change)
    assert (changed.get_json()["is_admin"], changed.get_json()["disabled"]) == (True, True)
    api("POST", "/api/auth/login", 401, json={"username": "bob", "password": "new-password"})
    api("PATCH", "/api/users/bob", 200, token=world["root"], json={"disabled": False})
    api("POST", "/api/auth/login", 201, json={"username": "bob", "password": "new-password"})

    api("DELETE", "/api/users/bob", 204, token=world["root"])
    api("GET", "/api/users/bob", 404, token=world["root"])
    api("DELETE", "/api/users/bob", 404, token=world["root"])


def test_user_changes_that_would_leave_no_admin_or_owner_are_409(api, world):
    taken = api("POST", "/api/users", 409, token=world["root"],
                json={"name": "alice", "password": "long-enough"})  # fmt: skip
    assert problem(taken)[1] == "User 'alice' already exists"
    api("PATCH", "/api/users/root", 409, token=world["root"], json={"is_admin": False})
    owner = api("DELETE", "/api/users/alice", 409, token=world["root"])
    assert problem(owner) == (
        "last_owner",
        "The user is the only owner of ch: make another member owner first",
    )
    api("POST", "/api/users", 400, token=world["root"], json={"name": "x", "password": "short"})


@pytest.mark.parametrize(("who", "detail"), [
    ("alice", "User 'alice' is not an admin"),
    ("root-read", "takes a password or a user token of scope manage"),
])  # fmt: skip
def test_only_an_admin_with_a_manage_credential_manages_users(api, world, who, detail):
    response = api("GET", "/api/users", 403, token=world[who])

    assert detail in problem(response)[1]
    api("GET", "/api/users", 401)


def test_the_owner_manages_mirrors_and_never_sees_the_upstream_password(api, world):
    url = "/api/channels/ch/mirrors"
    body = {
        "type": "pypi",
        "source": "https://pypi.example/simple",
        "ttl": "5m",
        "username": "me",
        "password": "upstream-secret",
        "quota": "1G",
        "min_age": "7d",
    }

    made = api("POST", url, 201, token=world["alice"], json=body)

    shown = made.get_json()
    assert (shown["source"], shown["ttl"], shown["credentials"]) == (
        "https://pypi.example/simple/", 300, True,
    )  # fmt: skip
    assert (shown["quota"], shown["min_age"]) == (1 << 30, 7 * 86400)
    assert "upstream-secret" not in made.get_data(as_text=True)
    listed = api("GET", url, 200, token=world["alice"]).get_json()
    assert [mirror["type"] for mirror in listed["items"]] == ["pypi"]
    assert api("GET", f"{url}/pypi", 200, token=world["alice"]).get_json() == shown
    api("GET", f"{url}/cran", 404, token=world["alice"])
    api("POST", url, 409, token=world["alice"], json=body)
    api("POST", url, 400, token=world["alice"], json={"type": "pypi", "source": "ftp://x"})
    refreshed = api("POST", f"{url}/pypi/refresh", 202, token=world["alice"])
    assert refreshed.get_json() == {"stale_pages": 0}
    api("POST", f"{url}/cran/refresh", 404, token=world["alice"])
    api("DELETE", f"{url}/pypi", 204, token=world["alice"])
    api("DELETE", f"{url}/pypi", 404, token=world["alice"])
    api("GET", "/api/channels/nope/mirrors", 404, token=world["alice"])


def test_the_last_admin_cannot_be_disabled_and_a_refused_change_changes_nothing(api, world):
    disabled = api("PATCH", "/api/users/root", 409, token=world["root"], json={"disabled": True})
    assert problem(disabled)[1] == "The server needs an admin: make another user admin first"
    api("GET", "/api/account", 200, token=world["root"])

    change = {"password": "brand-new-pass", "is_admin": False}
    api("PATCH", "/api/users/root", 409, token=world["root"], json=change)
    api("POST", "/api/auth/login", 401, json={"username": "root", "password": "brand-new-pass"})


@pytest.mark.parametrize(("body", "detail"), [
    ({"source": "ftp://u:hunter2@h/"}, "Give upstream credentials with --username"),
    ({"source": "http://[bad/"}, "Invalid source: not a URL"),
    ({"source": "http://h:99999/"}, "Invalid source: not a URL"),
    ({"source": "https://h/simple/?token=hunter2"}, "Invalid source: no query or fragment"),
    ({"source": "https://h/simple/", "quota": 10**30}, "Invalid quota: at least 1 byte"),
])  # fmt: skip
def test_a_bad_upstream_is_400_and_never_repeated(api, world, body, detail, caplog):
    response = api("POST", "/api/channels/ch/mirrors", 400, token=world["alice"],
                   json={"type": "pypi", **body})  # fmt: skip

    assert problem(response)[1].startswith(detail)
    assert "hunter2" not in response.get_data(as_text=True) + caplog.text
