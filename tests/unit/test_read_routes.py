"""Every read route of a channel at the route level: HEAD answers as GET does without a body,
the simple pages negotiate by Accept and `?format=` (406 for what they cannot offer)."""

from __future__ import annotations

import hashlib

import pytest

from .builders import WHEEL_NAME, r_form, refusal, send, token_auth, twine_form, wheel

SHA256 = hashlib.sha256(wheel()).hexdigest()
JSON = "application/vnd.pypi.simple.v1+json"
READ_ROUTES = [
    "simple/",
    "simple/demo-pkg/",
    f"files/{SHA256}/{WHEEL_NAME}",
    f"files/{SHA256}/{WHEEL_NAME}.metadata",
    "cran/src/contrib/PACKAGES",
    "cran/src/contrib/PACKAGES.gz",
    "cran/src/contrib/PACKAGES.rds",
    "cran/src/contrib/Meta/archive.rds",
    "cran/src/contrib/abc_2.1.tar.gz",
    "cran/bin/windows/contrib/4.4/PACKAGES",
    "simple/no-such-project/",
    "cran/src/contrib/nope_1.0.tar.gz",
]


@pytest.fixture
def auth(client, repo):
    made = repo.owner_with_channel("alice", "ch")
    headers = token_auth(repo.token(made.user_id, made.channel_id, "write"))
    for form in (twine_form(), r_form()):
        assert send(client, "POST", "/api/repo/ch", data=form, headers=headers).status_code == 200
    return headers


@pytest.mark.parametrize("path", READ_ROUTES)
def test_head_answers_as_get_does_without_a_body(client, auth, path):
    got = send(client, "GET", f"/api/repo/ch/{path}", headers=auth)

    head = send(client, "HEAD", f"/api/repo/ch/{path}", headers=auth)

    assert head.status_code == got.status_code
    assert head.get_data() == b""
    for header in ("Content-Type", "Content-Length", "ETag", "Cache-Control"):
        assert head.headers.get(header) == got.headers.get(header), header


@pytest.mark.parametrize("path", READ_ROUTES)
def test_head_needs_the_credential_get_needs(client, auth, path):
    response = send(client, "HEAD", f"/api/repo/ch/{path}")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="repo"'


@pytest.mark.parametrize("page", ["simple/", "simple/demo-pkg/"])
@pytest.mark.parametrize("accept", ["application/xml", "application/vnd.pypi.simple.v2+json",
                                    "text/plain", "image/*"])  # fmt: skip
def test_an_index_page_answers_406_for_what_it_cannot_offer(client, auth, page, accept):
    response = send(client, "GET", f"/api/repo/ch/{page}", headers={**auth, "Accept": accept})

    assert response.status_code == 406
    assert refusal(response) == (
        "Not acceptable: this index offers application/vnd.pypi.simple.v1+json,"
        " application/vnd.pypi.simple.v1+html, text/html"
    )


@pytest.mark.parametrize("page", ["simple/", "simple/demo-pkg/"])
@pytest.mark.parametrize("spelled", [JSON, JSON.replace("+", "%2B")])  # PEP 691's, and encoded
def test_format_in_the_query_overrides_accept(client, auth, page, spelled):
    response = send(client, "GET", f"/api/repo/ch/{page}?format={spelled}",
                    headers={**auth, "Accept": "text/html"})  # fmt: skip

    assert response.status_code == 200
    assert response.mimetype == JSON
    assert response.json["meta"]["api-version"].startswith("1.")
