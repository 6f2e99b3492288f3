"""The package page's "Install as of" commands (issue 14): pip, uv and R through the channel's
snapshot at the newest upload, and that the URL each shows answers with the package in it."""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

import pytest

from repo.db import get_db
from repo.ui.commands import PLACEHOLDER

from .builders import basic, r_form, send, token_auth, twine_form
from .webui import text

pytestmark = pytest.mark.usefixtures("fast_passwords")

PINNED = re.compile(r'<code id="install-as-of-\d+">(.*?)</code>')


def upload(client, repo, form, public: bool) -> str:
    """alice's read token for 'ch' (public or not), after she uploads `form` there."""
    made = repo.owner_with_channel("alice", "ch", public)
    auth = token_auth(repo.token(made.user_id, made.channel_id, "write"))
    assert send(client, "POST", "/api/repo/ch/", headers=auth, data=form).status_code == 200
    return repo.token(made.user_id, made.channel_id, "read")


def pinned_commands(visitor, url: str) -> tuple[str, list[str]]:
    """(the newest upload's time as stored, the "Install as of" commands of the page)."""
    page = text(visitor.get(url))
    newest = get_db().execute("SELECT max(uploaded) FROM files").fetchone()[0]
    assert f'<time datetime="{newest}">' in page and "RFC 3339" in page
    return newest, [html.unescape(command) for command in PINNED.findall(page)]


def fetch(client, url: str, token: str) -> str:
    """GET `url` as pip or R would, with `token` in place of <TOKEN>: credentials in the URL
    go as Basic (pip, uv), a token in the path stays there (R)."""
    parts = urlsplit(url.replace(PLACEHOLDER, token))
    headers = basic(parts.username, parts.password) if parts.username else {}
    response = send(client, "GET", parts.path, headers=headers)
    assert response.status_code == 200, response.status
    return text(response)


def test_python_package_installs_as_of_its_newest_upload(client, repo, visitor):
    token = upload(client, repo, twine_form(), public=False)
    visitor.login("alice")
    at, shown = pinned_commands(visitor, "/channels/ch/pypi/demo-pkg")
    index = f"http://__token__:{PLACEHOLDER}@localhost/api/repo/ch/snapshot/{at}/simple"
    assert shown == [f"{tool} install --index-url {index} Demo.Pkg" for tool in ("pip", "uv pip")]
    assert "demo_pkg-1.0-py3-none-any.whl" in fetch(client, f"{index}/demo-pkg/", token)


def test_r_package_on_a_public_channel_installs_as_of_its_newest_upload(client, repo, visitor):
    token = upload(client, repo, r_form(), public=True)
    at, shown = pinned_commands(visitor, "/channels/ch/cran/abc")
    repos = [f"http://localhost/api/repo/{prefix}ch/snapshot/{at}/cran"
             for prefix in ("", f"t/{PLACEHOLDER}/")]  # fmt: skip
    assert shown == [f'install.packages("abc", repos = "{url}")' for url in repos]
    for url in repos:
        assert "Package: abc" in fetch(client, f"{url}/src/contrib/PACKAGES", token)
