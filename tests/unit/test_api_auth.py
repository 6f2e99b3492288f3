"""The JSON API's front door: discovery, its OpenAPI document, logging in for a token, who a
credential is, and the one problem+json shape of every refusal."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from repo import accounts, tokens
from repo.api.openapi import path_of

from .apicalls import problem
from .builders import CHALLENGE, refusal, send, token_auth

LOGIN = {"username": "alice", "password": "alice-password"}


@pytest.fixture
def alice(repo):
    return repo.user("alice")


def test_discovery_names_the_version_limit_and_links(api):
    body = api("GET", "/api", 200).get_json()

    assert body["api_version"] == 1
    assert body["max_upload_bytes"] == api.app.config["MAX_CONTENT_LENGTH"]
    assert body["links"] == {"openapi": "/api/openapi.json", "login": "/api/auth/login"}


def test_the_openapi_document_is_valid_and_has_every_api_rule(api):
    validate(api.document)
    rules = {
        (rule.rule.removesuffix("/"), method)
        for rule in api.app.url_map.iter_rules()
        if rule.endpoint.startswith("api.") or rule.endpoint == "upload.upload"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {
        (path, method.upper()) for path, item in api.document["paths"].items() for method in item
    }
    assert {(path_of(rule.removeprefix("/api")), method) for rule, method in rules} == documented


def test_login_answers_a_manage_token_once(api, alice):
    body = api("POST", "/api/auth/login", 201, json={**LOGIN, "label": "cli@laptop"}).get_json()

    assert (body["scope"], body["label"], body["channel"]) == ("manage", "cli@laptop", None)
    assert body["token"].startswith("rp-") and body["expires"] is not None
    account = api("GET", "/api/account", 200, token=body["token"]).get_json()
    assert account["token"]["id"] == body["id"] and "token" not in account["token"]


def test_logging_in_again_with_the_same_label_replaces_the_token(api, alice):
    first = api("POST", "/api/auth/login", 201, json={**LOGIN, "label": "ci"}).get_json()
    other = api("POST", "/api/auth/login", 201, json={**LOGIN, "label": "laptop"}).get_json()

    again = api("POST", "/api/auth/login", 201, json={**LOGIN, "label": "ci"}).get_json()

    refused = api("GET", "/api/account", 401, token=first["token"])
    assert problem(refused) == ("token_revoked", f"Token {first['id']} has been revoked")
    api("GET", "/api/account", 200, token=again["token"])
    api("GET", "/api/account", 200, token=other["token"])


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"username": "alice"}, "Invalid body: 'password' is a required property"),
        ({**LOGIN, "expires_in": "1w"}, "Invalid body at 'expires_in': must satisfy pattern: "),
        ({**LOGIN, "extra": 1}, "Invalid body: Additional properties are not allowed"),
    ],
)
def test_login_names_what_is_wrong_with_its_body(api, alice, body, detail):
    response = api("POST", "/api/auth/login", 400, json=body)

    code, message = problem(response)
    assert code == "validation_error" and message.startswith(detail)


@pytest.mark.parametrize("password", ["S3cret-" + "x" * 2000, 123456789])
def test_a_refused_body_never_repeats_the_password(api, alice, password, caplog):
    response = api("POST", "/api/auth/login", 400, json={**LOGIN, "password": password})

    code, message = problem(response)
    assert code == "validation_error" and message.startswith("Invalid body at 'password': must")
    for text in (message, response.status, caplog.text):
        assert str(password)[:12] not in text


def test_a_body_that_is_not_json_is_refused(api, alice):
    response = api("POST", "/api/auth/login", 400, data="username=alice")

    assert problem(response)[1].startswith("Send a JSON object as the body")


def test_a_wrong_password_is_401_with_a_challenge(api, alice):
    response = api("POST", "/api/auth/login", 401, json={**LOGIN, "password": "wrong-one"})

    assert problem(response) == ("invalid_credentials", "Invalid user name or password")
    assert response.headers.get_all("WWW-Authenticate") == [CHALLENGE]


def test_login_is_throttled_like_every_password(api, alice):
    api.app.config["AUTH_FAILURE_LIMIT"] = 2
    for _ in range(2):
        api("POST", "/api/auth/login", 401, json={**LOGIN, "password": "wrong-one"})

    response = api("POST", "/api/auth/login", 429, json=LOGIN)

    assert problem(response)[0] == "rate_limited"
    assert int(response.headers["Retry-After"]) > 0


def test_account_by_password_has_no_token(api, repo):
    repo.user("root", admin=True)

    body = api("GET", "/api/account", 200, password=("root", "root-password")).get_json()

    assert body == {"username": "root", "is_admin": True, "token": None}


@pytest.mark.parametrize(
    "spelling",
    [
        lambda secret: {"Authorization": f"Bearer {secret}"},
        token_auth,
        lambda secret: {"X-Auth": secret},
    ],
)
def test_every_token_form_of_the_tool_routes_works_on_the_api(api, repo, alice, spelling):
    secret = repo.token(alice, scope="read")

    body = api("GET", "/api/account", 200, headers=spelling(secret)).get_json()

    assert (body["username"], body["token"]["scope"]) == ("alice", "read")


def test_bearer_and_x_auth_together_are_refused(api, repo, alice):
    secret = repo.token(alice)
    headers = {"Authorization": f"Bearer {secret}", "X-Auth": secret}

    response = api("GET", "/api/account", 401, headers=headers)

    assert problem(response)[1] == "Send one credential: Authorization or X-Auth, not both"


def test_anonymous_account_is_401_auth_required(api):
    response = api("GET", "/api/account", 401)

    assert problem(response) == ("auth_required", "Credentials required")
    assert response.headers.get_all("WWW-Authenticate") == [CHALLENGE]


@pytest.mark.parametrize("case", ["expired", "wrong"])
def test_a_bad_token_says_why_in_its_code(api, repo, alice, case):
    secret = repo.expired_token(alice) if case == "expired" else (tokens.generate())
    response = api("GET", "/api/account", 401, token=secret)

    assert problem(response)[0] == {"expired": "token_expired", "wrong": "token_invalid"}[case]
    assert secret not in response.get_data(as_text=True)


def test_the_ui_cookie_is_no_credential_on_the_api(api, alice, visitor):
    assert visitor.login("alice").status_code == 303

    response = send(visitor.client, "GET", "/api/account")

    assert response.status_code == 401


def test_an_unknown_api_url_is_a_problem_but_tool_routes_keep_text(api, client):
    response = send(client, "GET", "/api/nothing/here")

    assert response.status_code == 404 and response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "not_found"
    assert refusal(send(client, "GET", "/api/repo/nope/simple/")) == "Credentials required"


def test_a_wrong_method_is_a_problem_405(api, client):
    response = send(client, "PUT", "/api/account")

    assert response.status_code == 405 and response.get_json()["code"] == "method_not_allowed"


def test_local_and_api_token_lists_have_the_same_keys(api, repo, alice):
    secret = repo.token(alice)

    listed = api("GET", "/api/tokens", 200, token=secret).get_json()["items"]

    assert listed == accounts.list_tokens(repo.db, alice)
