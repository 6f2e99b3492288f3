"""The JSON API against a live gunicorn, with httpx: the OpenAPI document validates, every
(path, method, status) it documents is answered by the server (the list comes from the
document; one never seen fails the test), every answer matches the schema documented for it,
and the rules that matter most, end to end: nobody is 401 on a private channel, a read token
mints nothing, a channel token stays in its channel, a login replaces the token of its label,
logging out revokes, and a real wheel uploads as JSON (201, then 200)."""

from __future__ import annotations

import hashlib
import itertools
import re
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from repo import tokens

from ..unit.builders import r_binary
from .live import ADMIN_PASSWORD, LiveServer

JSON = "application/json"
ADMIN = ("admin", ADMIN_PASSWORD)
MAC = "R {}.1; aarch64-apple-darwin20; 2026-11-26 10:00:00 UTC; unix"
R_BINARY = "abc_2.1.tgz"
NUMBERS = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("api") / "data", workers=1, REPO_MAX_UPLOAD_MB="1")
    yield live
    live.stop()


@pytest.fixture(scope="module")
def document(server) -> dict:
    return httpx.get(f"{server.url}/api/openapi.json", timeout=30).json()


class Api:
    """httpx to the live server; each answer must be documented for its route and match the
    schema documented for its status, and is recorded as (path template, method, status)."""

    def __init__(self, server: LiveServer, document: dict):
        self.client = httpx.Client(base_url=server.url, timeout=60, headers={"Accept": JSON})
        self.document = document
        # Literal paths first: /api/tokens/current is not /api/tokens/{token_id}.
        self.templates = sorted(document["paths"], key=lambda path: path.count("{"))
        self.seen: set[tuple[str, str, int]] = set()

    def template(self, path: str) -> str:
        for template in self.templates:
            if re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", template), path):
                return template
        raise AssertionError(f"{path} is in no documented path")

    def __call__(self, method: str, path: str, status: int, *, token: str | None = None,
                 auth: tuple[str, str] | None = None, **options) -> httpx.Response:  # fmt: skip
        headers = options.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = self.client.request(method, path, headers=headers, auth=auth, **options)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        template = self.template(response.request.url.path)
        described = self.document["paths"][template][method.lower()]["responses"]
        assert str(status) in described, f"{method} {template} documents no {status}"
        self._check_body(response, described[str(status)])
        self.seen.add((template, method, status))
        return response

    def _check_body(self, response: httpx.Response, described: dict) -> None:
        content = described.get("content")
        if content is None:
            assert response.content == b""
            return
        [(media_type, schema)] = content.items()
        assert response.headers["Content-Type"].split(";")[0] == media_type
        root = {**schema["schema"], "components": self.document["components"]}
        Draft202012Validator(root).validate(response.json())

    def documented(self) -> set[tuple[str, str, int]]:
        return {
            (path, method.upper(), int(status))
            for path, item in self.document["paths"].items()
            for method, operation in item.items()
            for status in operation["responses"]
        }

    def login(self, label: str = "e2e", user: tuple[str, str] = ADMIN) -> dict:
        body = {"username": user[0], "password": user[1], "label": label}
        return self("POST", "/api/auth/login", 201, json=body).json()


@pytest.fixture
def api(server, document):
    client = Api(server, document)
    yield client
    client.client.close()


def twine_form(path: Path) -> tuple[dict, dict]:
    """The fields and file part twine sends for `path`."""
    data = path.read_bytes()
    fields = {":action": "file_upload", "protocol_version": "1",
              "sha256_digest": hashlib.sha256(data).hexdigest()}  # fmt: skip
    return fields, {"content": (path.name, data)}


def r_binary_form(rversion: str) -> tuple[dict, dict]:
    fields = {"filetype": "cran_binary_package", "rversion": rversion}
    return fields, {"content": (R_BINARY, r_binary(MAC.format(rversion)))}


def upload(api: Api, channel: str, form: tuple[dict, dict], status: int, **auth) -> httpx.Response:
    fields, files = form
    return api("POST", f"/api/repo/{channel}", status, data=fields, files=files, **auth)


def test_the_openapi_document_is_valid(document):
    validate(document)
    assert document["openapi"] == "3.1.0"


def _fill(template: str, **values: str) -> str:
    """A documented path with its parameters filled in (a sample for those not given)."""
    sample = {"channel": "dev", "token_id": "1", "user": "bob", "name": "bob", "kind": "pypi",
              "family": "python", "filename": "nothing.whl", **values}  # fmt: skip
    return re.sub(r"\{(\w+)\}", lambda match: sample[match[1]], template)


def _provoke_the_generic_refusals(api: Api, manage: str, read: str, token_id: int) -> None:
    """What every route of a kind answers alike, asked of each route the document says
    answers it: 401 to a wrong token, 403 to a read user token (its user an admin who owns
    every channel; `token_id` another of the admin's tokens), 404 for a missing channel, 400
    for a JSON body or a page that is not one."""
    wrong = tokens.generate()
    for template, method, status in sorted(api.documented()):
        path = _fill(template, token_id=str(token_id))
        if status == 401 and template == "/api/auth/login":
            api(method, path, 401, json={"username": "admin", "password": "wrong-password"})
        elif status == 401:
            api(method, path, 401, token=wrong)
        elif status == 403:
            api(method, path, 403, token=read)
        elif status == 404 and "{channel}" in template:
            api(method, _fill(template, channel="nope"), 404, token=manage)
        elif status == 400 and JSON in _body_types(api, template, method):
            api(method, path, 400, token=manage, json={"bogus": 1})
        elif status == 400 and method == "GET":
            api(method, f"{path}?limit=0", 400, token=manage)


def _body_types(api: Api, template: str, method: str) -> set[str]:
    operation = api.document["paths"][template][method.lower()]
    return set(operation.get("requestBody", {}).get("content", {}))


def test_every_documented_status_is_answered_by_the_live_server(api, dists, tmp_path):
    api("GET", "/api", 200)
    api("GET", "/api/openapi.json", 200)
    login = api.login()
    manage = login["token"]
    api("GET", "/api/account", 200, token=manage)
    read = api("POST", "/api/tokens", 201, token=manage, json={"scope": "read"}).json()
    _users(api, manage)
    _channels(api, manage)
    _files(api, manage, dists)
    _mirrors(api, manage)
    _tokens(api, manage, read["id"])
    _provoke_the_generic_refusals(api, manage, read["token"], login["id"])
    _throttled_login(tmp_path)
    api.seen.add(("/api/auth/login", "POST", 429))  # asked of its own server, just above

    assert sorted(api.documented() - api.seen) == []


def _users(api: Api, manage: str) -> None:
    bob = {"name": "bob", "password": "bob-password"}
    api("POST", "/api/users", 201, token=manage, json=bob)
    api("POST", "/api/users", 409, token=manage, json=bob)
    api("GET", "/api/users", 200, token=manage)
    api("GET", "/api/users/bob", 200, token=manage)
    api("PATCH", "/api/users/bob", 200, token=manage, json={"disabled": False})
    api("PATCH", "/api/users/admin", 409, token=manage, json={"is_admin": False})
    api("PATCH", "/api/users/nobody", 404, token=manage, json={"disabled": True})
    api("GET", "/api/users/nobody", 404, token=manage)
    api("POST", "/api/users", 201, token=manage, json={"name": "gone", "password": "gone-pass"})
    api("DELETE", "/api/users/gone", 204, token=manage)
    api("DELETE", "/api/users/gone", 404, token=manage)
    api("DELETE", "/api/users/admin", 409, token=manage)


def _channels(api: Api, manage: str) -> None:
    api("POST", "/api/channels", 201, token=manage, json={"name": "dev"})
    api("POST", "/api/channels", 409, token=manage, json={"name": "dev"})
    api("POST", "/api/channels", 201, token=manage, json={"name": "tmp", "privacy": "public"})
    api("GET", "/api/channels", 200, token=manage)
    api("GET", "/api/channels/dev", 200, token=manage)
    api("PATCH", "/api/channels/dev", 200, token=manage, json={"description": "Dev builds"})
    api("DELETE", "/api/channels/tmp", 204, token=manage)
    members = "/api/channels/dev/members"
    api("PUT", f"{members}/bob", 200, token=manage, json={"role": "write"})
    api("GET", members, 200, token=manage)
    api("PUT", f"{members}/admin", 409, token=manage, json={"role": "read"})
    api("DELETE", f"{members}/admin", 409, token=manage)
    api("DELETE", f"{members}/bob", 204, token=manage)


def _files(api: Api, manage: str, dists) -> None:
    wheel, _ = dists.build("api-demo", "1.0")
    changed, _ = dists.build("api-demo", "1.0", variant="other bytes")
    upload(api, "dev", twine_form(wheel), 201, token=manage)
    upload(api, "dev", twine_form(wheel), 200, token=manage)
    upload(api, "dev", twine_form(changed), 409, token=manage)
    upload(api, "dev", ({":action": "file_upload"}, {}), 400, token=manage)
    too_big = ({"filetype": "cran_source_package"}, {"content": ("abc_2.1.tar.gz", b"x" * 2**21)})
    # The server answers before the body has arrived and closes the connection after it.
    upload(api, "dev", too_big, 413, token=manage, headers={"Connection": "close"})
    api("DELETE", "/api/channels/dev", 409, token=manage)  # it holds files now
    for rversion in ("4.3", "4.4"):
        upload(api, "dev", r_binary_form(rversion), 201, token=manage)
    binary = f"/api/channels/dev/files/{R_BINARY}"
    api("DELETE", binary, 400, token=manage)  # in two trees: which one?
    api("DELETE", f"{binary}?subdir=bin/macosx/big-sur-arm64/contrib/4.3", 204, token=manage)
    api("GET", "/api/channels/dev/packages", 200, token=manage)
    api("GET", "/api/channels/dev/packages/python/api-demo", 200, token=manage)
    api("GET", "/api/channels/dev/packages/python/nothing", 404, token=manage)
    url = f"/api/channels/dev/files/{wheel.name}"
    api("PATCH", url, 200, token=manage, json={"yanked": True, "yanked_reason": "e2e"})
    api("PATCH", "/api/channels/dev/files/nothing.whl", 404, token=manage, json={"yanked": True})
    api("DELETE", url, 204, token=manage)
    api("DELETE", url, 404, token=manage)
    events = api("GET", "/api/channels/dev/history", 200, token=manage).json()["items"]
    assert [event["event"] for event in events][-2:] == ["yank", "delete"]


def _mirrors(api: Api, manage: str) -> None:
    mirrors = "/api/channels/dev/mirrors"
    # Nothing asks this upstream for anything: a mirror fetches on a page request only.
    body = {"type": "pypi", "source": "http://127.0.0.1:9/simple/", "password": "upstream-pw"}
    created = api("POST", mirrors, 201, token=manage, json=body)
    assert "upstream-pw" not in created.text
    api("POST", mirrors, 409, token=manage, json=body)
    api("GET", mirrors, 200, token=manage)
    api("GET", f"{mirrors}/pypi", 200, token=manage)
    api("GET", f"{mirrors}/cran", 404, token=manage)
    api("POST", f"{mirrors}/pypi/refresh", 202, token=manage)
    api("POST", f"{mirrors}/cran/refresh", 404, token=manage)
    api("DELETE", f"{mirrors}/pypi", 204, token=manage)
    api("DELETE", f"{mirrors}/pypi", 404, token=manage)


def _tokens(api: Api, manage: str, read_id: int) -> None:
    api("GET", "/api/tokens", 200, token=manage)
    api("GET", "/api/tokens?user=nobody", 404, token=manage)
    api("POST", "/api/tokens", 404, token=manage, json={"scope": "read", "channel": "nope"})
    api("GET", "/api/tokens/current", 200, token=manage)
    api("GET", "/api/tokens/current", 404, auth=ADMIN)
    api("DELETE", "/api/tokens/current", 404, auth=ADMIN)
    api("GET", f"/api/tokens/{read_id}", 200, token=manage)
    spare = api("POST", "/api/tokens", 201, token=manage, json={"scope": "write"}).json()
    api("POST", f"/api/tokens/{spare['id']}/rotate", 200, token=manage)
    api("DELETE", f"/api/tokens/{spare['id']}", 204, token=manage)
    api("POST", f"/api/tokens/{spare['id']}/rotate", 409, token=manage)
    for method, tail in (("GET", ""), ("DELETE", ""), ("POST", "/rotate")):
        api(method, f"/api/tokens/999999{tail}", 404, token=manage)
    api("DELETE", "/api/tokens/current", 204, token=api.login("logout")["token"])


def _throttled_login(tmp_path: Path) -> None:
    """429 with Retry-After once an address has failed too often (a server of its own: the
    limit would hold up every other test of this module)."""
    live = LiveServer(tmp_path / "throttled", workers=1, REPO_AUTH_FAILURE_LIMIT="2")
    try:
        wrong = {"username": "admin", "password": "wrong-password"}
        for _ in range(2):
            assert httpx.post(f"{live.url}/api/auth/login", json=wrong).status_code == 401
        right = {"username": "admin", "password": ADMIN_PASSWORD}
        response = httpx.post(f"{live.url}/api/auth/login", json=right)
        assert response.status_code == 429, response.text
        assert response.json()["code"] == "rate_limited"
        assert int(response.headers["Retry-After"]) > 0
    finally:
        live.stop()


# --- the rules, one by one ----------------------------------------------------------------


@pytest.fixture
def private(api) -> tuple[str, str]:
    """A private channel of its own, made by a fresh login: (name, manage token)."""
    manage = api.login("fixture")["token"]
    name = f"priv{next(NUMBERS)}"
    api("POST", "/api/channels", 201, token=manage, json={"name": name})
    return name, manage


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_anonymous_is_401_on_a_private_channel(api, private):
    name, _ = private

    response = api("GET", f"/api/channels/{name}", 401)

    assert response.headers["WWW-Authenticate"] == 'Basic realm="repo"'
    assert response.json()["code"] == "auth_required"
    api("GET", f"/api/channels/{name}/packages", 401)


def test_a_read_token_cannot_create_tokens(api, private):
    _, manage = private
    read = api("POST", "/api/tokens", 201, token=manage, json={"scope": "read"}).json()["token"]

    refused = api("POST", "/api/tokens", 403, token=read, json={"scope": "read"})

    assert refused.json()["code"] == "forbidden"
    api("POST", "/api/channels", 403, token=read, json={"name": "never"})


def test_a_channel_write_token_cannot_touch_another_channel(api, private):
    name, manage = private
    other = f"{name}-other"
    api("POST", "/api/channels", 201, token=manage, json={"name": other})
    body = {"scope": "write", "channel": name}
    write = api("POST", "/api/tokens", 201, token=manage, json=body).json()["token"]

    api("GET", f"/api/channels/{name}", 200, token=write)
    api("GET", f"/api/channels/{other}", 404, token=write)
    api("PATCH", f"/api/channels/{other}", 404, token=write, json={"description": "x"})
    api("PATCH", f"/api/channels/{name}", 403, token=write, json={"description": "x"})
    fields, files = r_binary_form("4.4")
    api("POST", f"/api/repo/{other}", 404, token=write, data=fields, files=files)


def test_logging_in_again_replaces_the_token_of_the_same_label(api):
    first = api.login("laptop")
    again = api.login("laptop")

    refused = api("GET", "/api/account", 401, token=first["token"])

    assert refused.json()["code"] == "token_revoked"
    assert (
        api("GET", "/api/account", 200, token=again["token"]).json()["token"]["id"] == again["id"]
    )


def test_logging_out_revokes_the_token(api):
    secret = api.login("to-log-out")["token"]

    api("DELETE", "/api/tokens/current", 204, token=secret)

    assert api("GET", "/api/account", 401, token=secret).json()["code"] == "token_revoked"


def test_a_json_upload_of_a_built_wheel_is_201_then_200(api, private, dists, server):
    name, manage = private
    wheel = next(path for path in dists.build("json-upload", "2.0") if path.suffix == ".whl")

    first = upload(api, name, twine_form(wheel), 201, token=manage).json()
    again = upload(api, name, twine_form(wheel), 200, token=manage).json()

    assert first == again
    assert (first["filename"], first["family"], first["kind"]) == (wheel.name, "python",
                                                                   "bdist_wheel")  # fmt: skip
    assert first["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    page = httpx.get(f"{server.url}/api/repo/{name}/simple/json-upload/", headers={
        **_bearer(manage), "Accept": "application/vnd.pypi.simple.v1+json"})  # fmt: skip
    assert [file["hashes"]["sha256"] for file in page.json()["files"]] == [first["sha256"]]
