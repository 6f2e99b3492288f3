"""The WSGI fast path answers a cached index page exactly as the Flask route does, and hands
every other request to Flask (the auth matrix walks the refusals through it as well)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from repo import accounts
from repo.access import AccessCache
from repo.mirror import settings
from repo.pypi import fastpath

from .builders import META, basic, mistyped, send, token_auth, twine_form, wheel

JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture
def world(app, client, repo):
    made = repo.owner_with_channel("alice", "ch")
    repo.channel("pub", made.user_id, public=True)
    secret = repo.token(made.user_id)
    for channel in ("ch", "pub"):
        send(client, "POST", f"/api/repo/{channel}/", data=twine_form(),
             headers=token_auth(secret))  # fmt: skip
    return secret


@pytest.fixture
def answered(monkeypatch):
    """The requests the fast path answered itself."""
    seen = []
    original = fastpath.FastIndex._answer

    def spy(self, environ):
        answer = original(self, environ)
        if answer is not None:
            seen.append(environ["PATH_INFO"])
        return answer

    monkeypatch.setattr(fastpath.FastIndex, "_answer", spy)
    return seen


def forms(secret):
    return {
        "basic": ("/api/repo/ch/simple/", token_auth(secret)),
        "token-password": ("/api/repo/ch/simple/", basic("__token__", secret)),
        "x-auth": ("/api/repo/ch/simple/demo-pkg/", {"X-Auth": secret}),
        "repo-t": (f"/api/repo/t/{secret}/ch/simple/demo-pkg/", {}),
        "t-repo": (f"/api/t/{secret}/repo/ch/simple/", {}),
        "anonymous-public": ("/api/repo/pub/simple/demo-pkg/", {}),
    }


@pytest.mark.parametrize("form", ["basic", "token-password", "x-auth", "repo-t", "t-repo",
                                  "anonymous-public"])  # fmt: skip
@pytest.mark.parametrize("accept", [JSON, "text/html"])
def test_cached_page_is_the_same_as_flasks(client, world, answered, form, accept):
    url, headers = forms(world)[form]
    headers = {**headers, "Accept": accept}

    first = send(client, "GET", url, headers=headers)
    second = send(client, "GET", url, headers=headers)
    revalidated = send(
        client, "GET", url, headers={**headers, "If-None-Match": first.headers["ETag"]}
    )

    assert answered == [url.split("?")[0]] * 2
    assert first.status_code == second.status_code == 200
    assert second.get_data() == first.get_data()
    assert sorted((k, v) for k, v in second.headers.items() if k != "Date") == sorted(
        (k, v) for k, v in first.headers.items() if k != "Date")  # fmt: skip
    assert revalidated.status_code == 304


@pytest.mark.parametrize(
    "headers_for",
    [
        lambda s: {**token_auth(s), "X-Auth": s},  # two credentials
        lambda s: basic("alice", "alice-password"),  # a password
        lambda s: {"Authorization": "Bearer " + s},  # not Basic
        lambda s: token_auth(mistyped(s)),  # a typo
        lambda s: {},  # anonymous, private channel
    ],
    ids=["two-credentials", "password", "bearer", "typo", "anonymous"],
)
def test_anything_else_goes_to_flask(client, world, answered, headers_for):
    url = "/api/repo/ch/simple/"
    send(client, "GET", url, headers=token_auth(world))  # the page is now cached
    answered.clear()

    response = send(client, "GET", url, headers=headers_for(world))

    assert answered == []
    assert response.status_code in (200, 401)


def test_an_upload_is_seen_at_once(client, world, answered):
    headers = {**token_auth(world), "Accept": JSON}
    send(client, "GET", "/api/repo/ch/simple/", headers=headers)
    assert send(client, "GET", "/api/repo/ch/simple/", headers=headers).json["projects"] == [
        {"name": "Demo.Pkg"}
    ]
    other = wheel(META.replace(b"Demo.Pkg", b"Other"), dist_info="other-1.0.dist-info")
    form = twine_form(other, "other-1.0-py3-none-any.whl", name="Other")
    assert (
        send(client, "POST", "/api/repo/ch/", data=form, headers=token_auth(world)).status_code
        == 200
    )

    after = send(client, "GET", "/api/repo/ch/simple/", headers=headers)

    assert after.json["projects"] == [{"name": "Demo.Pkg"}, {"name": "Other"}]


@pytest.mark.parametrize("tail, status", [("%0A", 308), ("demo-pkg/%0A", 404)])
def test_a_trailing_newline_is_not_the_end_of_the_path(client, world, answered, tail, status):
    # Review finding 8: `$` matched before a final newline, so these were served cached pages.
    for page in ("/api/repo/ch/simple/", "/api/repo/ch/simple/demo-pkg/"):
        send(client, "GET", page, headers=token_auth(world))  # now cached
    answered.clear()

    response = send(client, "GET", f"/api/repo/ch/simple/{tail}", headers=token_auth(world))

    assert answered == []
    # What Flask answers: a project named "\n" needs its slash; no page ends in a newline.
    assert response.status_code == status
    assert "\n" not in response.headers.get("Location", "")


@pytest.fixture
def strangers(world, repo):
    """Tokens that authenticate (or did) but may not read the private channel 'ch', with the
    status Flask answers each; made after `world`, so alice is user 1 and 'ch' channel 1."""
    bob = repo.user("bob")
    pub = accounts.find_channel(repo.db, "pub")["id"]
    revoked_id, revoked = accounts.create_token(repo.db, 1)
    accounts.revoke_token(repo.db, revoked_id)
    dave = repo.user("dave")
    disabled = repo.token(dave)
    accounts.grant(repo.db, 1, dave, "read")
    accounts.set_disabled(repo.db, dave, True)
    return {
        "non-member-user-token": (repo.token(bob), 404),
        "other-channel-token": (repo.token(1, pub, "read"), 404),
        "revoked-token": (revoked, 401),
        "expired-token": (repo.expired_token(1), 401),
        "disabled-users-token": (disabled, 401),
    }


@pytest.mark.parametrize("page", ["", "demo-pkg/"])
@pytest.mark.parametrize("form", ["basic", "x-auth", "repo-t"])
@pytest.mark.parametrize(
    "who", ["non-member-user-token", "other-channel-token", "revoked-token", "expired-token",
            "disabled-users-token"],
)  # fmt: skip
def test_a_warm_cache_is_never_served_to_a_token_without_rights(
    client, world, strangers, answered, page, form, who
):
    # Review of the tests, finding 2: with the page already cached, only role_in stands
    # between another user's token and a private channel's page.
    for accept in (JSON, "text/html"):
        warm = send(client, "GET", f"/api/repo/ch/simple/{page}",
                    headers={**token_auth(world), "Accept": accept})  # fmt: skip
        assert warm.status_code == 200
    answered.clear()
    secret, status = strangers[who]
    url, headers = {
        "basic": (f"/api/repo/ch/simple/{page}", token_auth(secret)),
        "x-auth": (f"/api/repo/ch/simple/{page}", {"X-Auth": secret}),
        "repo-t": (f"/api/repo/t/{secret}/ch/simple/{page}", {}),
    }[form]

    response = send(client, "GET", url, headers={**headers, "Accept": JSON})

    assert answered == []
    assert response.status_code == status
    assert b"demo" not in response.get_data().lower()


def test_the_one_query_says_what_check_token_and_find_channel_say(app, repo):
    made = repo.owner_with_channel("alice", "ch")
    bob = repo.user("bob")
    accounts.grant(repo.db, made.channel_id, bob, "read")
    other = repo.channel("other", made.user_id)
    settings.create(repo.db, other, "pypi", "https://upstream.example/simple/")
    secrets = [repo.token(made.user_id), repo.token(bob), repo.token(bob, made.channel_id, "read"),
               repo.token(repo.user("root", admin=True))]  # fmt: skip
    for secret in secrets:
        for name in ("ch", "other", "missing"):
            identity, channel = accounts.check_token_for_channel(repo.db, secret, name)
            assert identity == accounts.check_token(repo.db, secret)
            expected = accounts.find_channel(repo.db, name, identity)
            assert channel == (None if expected is None else dict(expected))
            if channel is not None:
                assert channel["mirrored"] == (name == "other")
                assert accounts.role_in(repo.db, identity, channel) == accounts.role_in(
                    repo.db, identity, expected
                )


@pytest.mark.parametrize("secret", ["revoked", "expired", "unknown", "malformed"])
def test_the_one_query_refuses_what_check_token_refuses(app, repo, secret):
    made = repo.owner_with_channel("alice", "ch")
    revoked = repo.token(made.user_id, label="gone")
    accounts.revoke_token(repo.db, accounts.list_tokens(repo.db, made.user_id)[0]["id"])
    unknown = mistyped(repo.token(made.user_id))
    secret = {"revoked": revoked, "expired": repo.expired_token(made.user_id),
              "unknown": unknown, "malformed": "x"}[secret]  # fmt: skip
    with pytest.raises(accounts.TokenRefused) as fused:
        accounts.check_token_for_channel(repo.db, secret, "ch")
    with pytest.raises(accounts.TokenRefused) as alone:
        accounts.check_token(repo.db, secret)
    assert str(fused.value) == str(alone.value)


def answer(db, secret: str, cache=None):
    """check_token_for_channel's answer for 'ch', or its refusal, in one comparable shape."""
    try:
        return accounts.check_token_for_channel(db, secret, "ch", cache)
    except accounts.TokenRefused as refused:
        return "refused", str(refused)


@pytest.fixture
def members(app, repo):
    """alice owns 'ch', bob reads it; a token of each."""
    made = repo.owner_with_channel("alice", "ch")
    bob = repo.user("bob")
    accounts.grant(repo.db, made.channel_id, bob, "read")
    tokens = {"alice_token": repo.token(made.user_id), "bob_token": repo.token(bob)}
    return SimpleNamespace(alice=made.user_id, bob=bob, channel=made.channel_id, **tokens)


def test_a_kept_answer_costs_one_query_of_one_row(repo, members):
    cache = AccessCache()
    first = answer(repo.db, members.bob_token, cache)
    seen = []
    repo.db.set_trace_callback(seen.append)
    try:
        again = answer(repo.db, members.bob_token, cache)
    finally:
        repo.db.set_trace_callback(None)

    assert again == first == answer(repo.db, members.bob_token)
    assert [sql.split(" FROM ")[1].split()[0] for sql in seen] == ["access_generation"]


def token_id(db, user_id: int) -> int:
    return accounts.list_tokens(db, user_id)[-1]["id"]


# Each change to what the check reads, made as the server makes it.
CHANGES = {
    "revoked": lambda db, m: accounts.revoke_token(db, token_id(db, m.bob)),
    "rotated": lambda db, m: accounts.rotate_token(db, token_id(db, m.bob)),
    "user disabled": lambda db, m: accounts.set_disabled(db, m.bob, True),
    "user made admin": lambda db, m: accounts.set_admin(db, m.bob, True),
    "user deleted": lambda db, m: accounts.delete_user(db, m.bob),
    "membership changed": lambda db, m: accounts.grant(db, m.channel, m.bob, "write"),
    "membership ended": lambda db, m: accounts.remove_member(db, m.channel, m.bob),
    "channel made public": lambda db, m: accounts.update_channel(db, m.channel, public=True),
    "channel mirrors": lambda db, m: settings.create(
        db, m.channel, "pypi", "https://upstream.example/simple/"
    ),
    "channel deleted": lambda db, m: accounts.delete_channel(db, m.channel, force=True),
}


@pytest.mark.parametrize("change", CHANGES)
def test_every_change_the_check_reads_is_seen_at_the_next_request(repo, members, change):
    cache = AccessCache()
    answer(repo.db, members.bob_token, cache)

    CHANGES[change](repo.db, members)

    assert answer(repo.db, members.bob_token, cache) == answer(repo.db, members.bob_token)


def test_an_upload_is_seen_at_the_next_request_through_a_kept_answer(client, repo, members):
    cache = AccessCache()
    before = answer(repo.db, members.alice_token, cache)[1]["revision"]

    send(
        client, "POST", "/api/repo/ch/", data=twine_form(), headers=token_auth(members.alice_token)
    )

    assert answer(repo.db, members.alice_token, cache)[1]["revision"] == before + 1


def test_a_kept_token_is_marked_used_once_a_minute(repo, members, monkeypatch):
    cache = AccessCache()
    writes = []
    repo.db.set_trace_callback(lambda sql: writes.append(sql) if "last_used" in sql
                               and sql.startswith("UPDATE") else None)  # fmt: skip
    try:
        for stamp in ("2026-12-01T10:00:01Z", "2026-12-01T10:00:59Z", "2026-12-01T10:01:00Z"):
            monkeypatch.setattr(accounts, "now", lambda stamp=stamp: stamp)
            answer(repo.db, members.bob_token, cache)
    finally:
        repo.db.set_trace_callback(None)

    assert len(writes) == 2
    assert accounts.list_tokens(repo.db, members.bob)[-1]["last_used"] == "2026-12-01T10:01:00Z"
