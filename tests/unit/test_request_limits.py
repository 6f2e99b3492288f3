"""Only the upload route takes large bodies and file parts, and only from clients that are not
a browser on another site's page: every other route's body is small and refused before it is
read (security review findings 1 and 2)."""

from __future__ import annotations

import html
import io
import re

import pytest

from .builders import WHEEL_NAME, refusal, send, stored, token_auth, twine_form

MB = 1024 * 1024
NOTHING = {"files": 0, "packages": 0, "blobs": [], "tmp": []}
UI_POSTS = ["/login", "/logout", "/channels", "/tokens"]


class CountingStream(io.BytesIO):
    """A request body that records how much of it the server read."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.taken = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.taken += len(chunk)
        return chunk

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(size)
        self.taken += len(line)
        return line


def page_error(response) -> str:
    """The message of the web UI's error page (people read these, not twine)."""
    assert response.mimetype == "text/html", response.mimetype
    match = re.search(r'<p class="error" role="alert">([^<]*)</p>', response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)
    return html.unescape(match[1])


@pytest.mark.parametrize("url", UI_POSTS)
def test_a_large_anonymous_form_is_refused_before_it_is_read(app, client, url):
    body = CountingStream(b"a=" + b"x" * (100 * MB))

    response = send(client, "POST", url, input_stream=body,
                    content_type="application/x-www-form-urlencoded",
                    headers={"Content-Length": str(len(body.getvalue()))})  # fmt: skip

    assert response.status_code == 413
    assert page_error(response) == "Request body too large: limit is 1 MB for this URL"
    assert body.taken == 0
    assert stored(app) == NOTHING


def test_a_form_just_under_the_limit_is_read(client):
    response = client.post("/login", data={"name": "x" * (MB - 100)})

    # Read, and refused for what it is: a sign-in without its CSRF token.
    assert response.status_code == 400
    assert "CSRF" in page_error(response)


@pytest.mark.parametrize("url", UI_POSTS)
def test_a_file_part_outside_the_upload_route_is_refused_and_not_stored(app, client, url):
    form = {"name": "alice", "content": (io.BytesIO(b"x" * (2 * 1024)), "a.bin")}

    response = send(client, "POST", url, data=form)

    assert response.status_code == 400
    assert page_error(response) == (
        "File parts are accepted only by the upload URL /api/repo/CHANNEL"
    )
    assert stored(app) == NOTHING


def test_a_form_of_many_parts_outside_the_upload_route_is_refused(client):
    form = {f"field{i}": "x" for i in range(101)}

    response = send(client, "POST", "/login", data=form, content_type="multipart/form-data")

    assert response.status_code == 413
    assert page_error(response).startswith("Form too large:")


def test_a_chunked_body_outside_the_upload_route_is_411(client):
    response = send(client, "POST", "/login", input_stream=io.BytesIO(b"name=alice"),
                    content_type="application/x-www-form-urlencoded",
                    headers={"Transfer-Encoding": "chunked"})  # fmt: skip

    assert response.status_code == 411
    assert page_error(response) == "Length Required: send the body with a Content-Length header"


def test_the_upload_route_still_takes_files_larger_than_the_small_limit(app, client, repo):
    made = repo.owner_with_channel("alice", "ch")
    auth = token_auth(repo.token(made.user_id, made.channel_id, "write"))
    form = twine_form(description="d" * (2 * MB))

    response = send(client, "POST", "/api/repo/ch", data=form, headers=auth)

    assert response.status_code == 200, response.status
    assert stored(app)["files"] == 1


# --- cross-site uploads ------------------------------------------------------------------

CROSS_SITE = [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://localhost:8001"},  # another port of the same host: another origin
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Sec-Fetch-Site": "same-site", "Origin": "http://localhost"},
]


@pytest.fixture
def write_auth(repo):
    made = repo.owner_with_channel("alice", "ch")
    return token_auth(repo.token(made.user_id, made.channel_id, "write"))


@pytest.mark.parametrize("headers", CROSS_SITE)
@pytest.mark.parametrize("url", ["/api/repo/ch", "/api/repo/ch/"])
def test_an_upload_a_browser_sends_for_another_site_is_refused(app, client, write_auth,
                                                                headers, url):  # fmt: skip
    response = send(client, "POST", url, data=twine_form(), headers={**write_auth, **headers})

    assert response.status_code == 403
    assert refusal(response) == (
        "Cross-site upload refused: upload with twine, uv, curl or R, or from this site's own pages"
    )
    assert stored(app) == NOTHING


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_a_cross_site_upload_gets_no_challenge_to_answer(client, headers):
    # Without a credential either: a 401 with WWW-Authenticate would make the browser resend
    # the form with the Basic credentials it remembers.
    response = send(client, "POST", "/api/repo/ch", data=twine_form(), headers=headers)

    assert response.status_code == 403
    assert "WWW-Authenticate" not in response.headers


@pytest.mark.parametrize(
    "headers",
    [
        {},  # twine, uv, curl and R
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},
        {"Sec-Fetch-Site": "none"},
    ],
)
def test_an_upload_from_a_client_or_this_site_is_accepted(app, client, write_auth, headers):
    response = send(client, "POST", "/api/repo/ch", data=twine_form(),
                    headers={**write_auth, **headers})  # fmt: skip

    assert response.status_code == 200, response.status
    assert response.get_data(as_text=True) == f"Uploaded {WHEEL_NAME} to channel 'ch'\n"
