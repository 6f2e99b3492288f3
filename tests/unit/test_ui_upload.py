"""Uploads from the web UI: on the upload route, and only there, the signed-in session counts
together with its CSRF token in the X-CSRF-Token header (repo/session_upload.py); a cookie
alone, a wrong token, an ended session or another site's page counts for nobody."""

from __future__ import annotations

import pytest
from werkzeug.routing import BuildError

from repo import accounts
from repo.db import get_db
from repo.session_upload import CSRF_HEADER, UPLOAD_ENDPOINT

from .builders import (
    CHALLENGE,
    WHEEL_NAME,
    r_form,
    refusal,
    send,
    stored,
    token_auth,
    twine_form,
    wheel,
)
from .webui import Visitor, text

pytestmark = pytest.mark.usefixtures("fast_passwords")

URL = "/api/repo/ch"


@pytest.fixture
def alice(repo, visitor):
    """alice, owner of the private channel 'ch', signed in to the web UI."""
    repo.owner_with_channel("alice", "ch")
    visitor.login("alice")
    return visitor


def upload(visitor: Visitor, form: dict | None = None, headers: dict | None = None,
           url: str = URL):  # fmt: skip
    """Send an upload from the visitor's browser with its session's CSRF header (unless
    `headers` says otherwise)."""
    sent = {CSRF_HEADER: visitor.csrf()} if headers is None else headers
    return send(visitor.client, "POST", url, data=form or twine_form(), headers=sent)


def uploader_of(filename: str) -> str | None:
    row = (
        get_db()
        .execute(
            "SELECT users.name FROM files JOIN users ON users.id = files.uploader_id"
            " WHERE files.filename = ?",
            (filename,),
        )
        .fetchone()
    )
    return row[0] if row else None


def test_a_writers_session_with_its_csrf_header_uploads_a_wheel(alice):
    response = upload(alice)
    assert response.status_code == 200, response.status
    assert text(response) == f"Uploaded {WHEEL_NAME} to channel 'ch'\n"
    assert uploader_of(WHEEL_NAME) == "alice"


def test_a_writers_session_uploads_an_r_package_with_a_trailing_slash(alice):
    response = upload(alice, r_form(), url=URL + "/")
    assert response.status_code == 200, response.status
    assert uploader_of("abc_2.1.tar.gz") == "alice"


def test_a_member_with_the_write_role_may_upload(app, repo, alice, client):
    db = get_db()
    accounts.grant(db, accounts.find_channel(db, "ch")["id"], repo.user("wes"), "write")
    wes = Visitor(app.test_client())
    wes.login("wes")
    assert upload(wes).status_code == 200
    assert uploader_of(WHEEL_NAME) == "wes"


@pytest.mark.parametrize(
    "headers, message",
    [
        ({}, "Credentials required"),
        ({CSRF_HEADER: "not-the-token"}, f"{CSRF_HEADER} does not match this browser's session"),
        ({CSRF_HEADER: ""}, f"{CSRF_HEADER} does not match this browser's session"),
    ],
    ids=["no-header", "wrong-token", "empty-token"],
)
def test_a_cookie_without_its_csrf_token_is_nobody(app, alice, headers, message):
    response = upload(alice, headers=headers)
    assert response.status_code == 401
    assert refusal(response).startswith(message)
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    assert stored(app)["files"] == 0 and stored(app)["tmp"] == []


def test_the_csrf_token_in_a_form_field_does_not_count(app, alice):
    form = {**twine_form(), "csrf_token": alice.csrf()}
    response = upload(alice, form, headers={})
    assert response.status_code == 401 and stored(app)["files"] == 0


def test_the_csrf_header_without_the_cookie_is_refused(app, alice):
    token = alice.csrf()
    stranger = Visitor(app.test_client())
    response = upload(stranger, headers={CSRF_HEADER: token})
    assert response.status_code == 401
    assert refusal(response).startswith(f"{CSRF_HEADER} does not match")


def test_a_readers_session_is_forbidden_to_upload(app, repo, alice):
    db = get_db()
    accounts.grant(db, accounts.find_channel(db, "ch")["id"], repo.user("rita"), "read")
    rita = Visitor(app.test_client())
    rita.login("rita")
    response = upload(rita)
    assert response.status_code == 403
    assert refusal(response) == "User 'rita' may not upload to channel 'ch'"
    assert stored(app)["files"] == 0


def test_a_non_members_session_does_not_find_a_private_channel(app, repo, alice):
    repo.user("mallory")
    mallory = Visitor(app.test_client())
    mallory.login("mallory")
    response = upload(mallory)
    assert response.status_code == 404 and refusal(response) == "Channel 'ch' not found"


def test_a_copied_cookie_stops_uploading_when_its_session_ends(app, alice):
    token = alice.csrf()
    thief = alice.copy()
    assert upload(thief, twine_form(), {CSRF_HEADER: token}).status_code == 200
    alice.post("/logout")
    response = upload(thief, r_form(), {CSRF_HEADER: token})
    assert response.status_code == 401
    assert refusal(response) == "The web session has ended: sign in again"
    assert stored(app)["files"] == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://localhost"},
    ],
)
def test_a_cross_site_request_is_refused_even_with_the_session_and_token(app, alice, headers):
    response = upload(alice, headers={CSRF_HEADER: alice.csrf(), **headers})
    assert response.status_code == 403
    assert refusal(response).startswith("Cross-site upload refused")
    assert stored(app)["files"] == 0


def test_the_same_origin_browser_request_is_accepted(alice):
    same = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
    assert upload(alice, headers={CSRF_HEADER: alice.csrf(), **same}).status_code == 200


# A value for every variable of an API route: a private channel of alice's, and names that
# exist there or not (the answer only has to be the anonymous caller's).
SAMPLE = {"channel": "ch", "token": "rp-not-a-token", "name": "demo-pkg", "project": "demo-pkg",
          "user": "alice", "filename": WHEEL_NAME, "family": "python", "kind": "pypi",
          "token_id": 1, "sha256": "0" * 64, "path": "src/contrib/PACKAGES",
          "date": "2026-01-01"}  # fmt: skip


def _api_requests(app) -> list[tuple[str, str]]:
    """(method, URL) of every API route but the plain upload, under every prefix."""
    requests = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if not rule.rule.startswith("/api") or rule.endpoint == UPLOAD_ENDPOINT:
                continue
            values = {key: SAMPLE[key] for key in rule.arguments if key in SAMPLE}
            try:
                url = app.url_for(rule.endpoint, **values)
            except BuildError as missing:  # a test that forgot a variable must say so
                raise AssertionError(f"no SAMPLE value for {rule.rule}") from missing
            requests += [(method, url) for method in sorted(rule.methods - {"OPTIONS"})]
    return requests


def _body(method: str) -> dict:
    """A small file part for a POST (what a browser form would send), nothing otherwise."""
    return {"data": twine_form()} if method == "POST" else {}


def test_the_session_counts_on_no_api_route_but_the_upload(app, client, alice):
    """Every other API route answers a signed-in browser with its session's CSRF header
    exactly as it answers the anonymous caller."""
    upload(alice)  # a file for the read routes to find (or not)
    token, anonymous = alice.csrf(), app.test_client()
    differ = {}
    requests = _api_requests(app)
    assert len(requests) > 20, requests
    for method, url in requests:
        signed = send(alice.client, method, url, headers={CSRF_HEADER: token}, **_body(method))
        nobody = send(anonymous, method, url, **_body(method))
        if (signed.status_code, signed.get_data()) != (nobody.status_code, nobody.get_data()):
            differ[method, url] = (signed.status, nobody.status)
    assert differ == {}


def test_the_page_gets_the_apis_json_answers(alice):
    """What static/upload.js reads: 201 and the file for a new file, 200 for the same bytes
    again, problem+json with `detail` and `code` for other bytes under the same name."""
    json_answer = {CSRF_HEADER: alice.csrf(), "Accept": "application/json"}
    new = upload(alice, headers=json_answer)
    assert new.status_code == 201 and new.mimetype == "application/json"
    assert {key: new.json[key] for key in ("filename", "family", "name")} == {
        "filename": WHEEL_NAME, "family": "python", "name": "Demo.Pkg"}  # fmt: skip
    again = upload(alice, headers=json_answer)
    assert again.status_code == 200 and again.json["filename"] == WHEEL_NAME
    other = upload(alice, twine_form(wheel(code=b"# other bytes\n")), json_answer)
    assert other.status_code == 409 and other.mimetype == "application/problem+json"
    assert other.json["code"] == "file_exists"
    assert other.json["detail"].startswith("File already exists")


def test_a_session_upload_needs_no_digest_and_a_wrong_one_still_fails(alice):
    bare = twine_form(md5_digest=None, sha256_digest=None, blake2_256_digest=None)
    assert upload(alice, bare).status_code == 200
    wrong = twine_form(wheel(code=b"other"), sha256_digest="0" * 64, md5_digest=None,
                       blake2_256_digest=None)  # fmt: skip
    response = upload(alice, wrong)
    assert response.status_code == 400
    assert "does not match a digest calculated" in refusal(response)


def test_a_token_upload_still_needs_a_digest(repo, alice, client):
    token = repo.token(repo.db.execute("SELECT id FROM users WHERE name = 'alice'").fetchone()[0])
    bare = twine_form(md5_digest=None, sha256_digest=None, blake2_256_digest=None)
    response = send(client, "POST", URL, data=bare, headers=token_auth(token))
    assert response.status_code == 400
    assert "Include at least one message digest" in refusal(response)
