"""The channels pages: who sees which channel, making one, a channel's packages and search,
and package pages that show uploaded metadata as text only."""

from __future__ import annotations

import pytest

from repo import accounts
from repo.db import get_db
from repo.mirror import settings

from .builders import r_form, r_source, send, token_auth, twine_form, wheel
from .webui import text

pytestmark = pytest.mark.usefixtures("fast_passwords")

SCRIPT = "<script>window.pwned=1</script>"


@pytest.fixture
def channels(repo):
    """alice owns the private 'secret' and the public 'open'; bob owns the private 'bobs'."""
    alice = repo.owner_with_channel("alice", "secret")
    repo.channel("open", alice.user_id, public=True)
    repo.owner_with_channel("bob", "bobs")
    return alice


def upload(client, repo, form, channel: str = "secret") -> None:
    """Upload through the API as alice, who owns `channel`."""
    db = get_db()
    alice, target = accounts.get_user(db, "alice"), accounts.find_channel(db, channel)
    auth = token_auth(repo.token(alice["id"], target["id"], "write"))
    response = send(client, "POST", f"/api/repo/{channel}/", headers=auth, data=form)
    assert response.status_code == 200, response.status


def listed(response) -> set[str]:
    page = text(response)
    return {name for name in ("secret", "open", "bobs") if f'href="/channels/{name}"' in page}


def test_anonymous_visitor_sees_public_channels_only(channels, visitor):
    assert listed(visitor.get("/channels")) == {"open"}


def test_user_sees_own_and_public_channels(channels, visitor):
    visitor.login("alice")
    assert listed(visitor.get("/channels")) == {"secret", "open"}


def test_admin_sees_every_channel(channels, repo, visitor):
    repo.user("root", admin=True)
    visitor.login("root")
    assert listed(visitor.get("/channels")) == {"secret", "open", "bobs"}


@pytest.mark.parametrize("who", [None, "alice"])
@pytest.mark.parametrize("url", ["/channels/bobs", "/channels/bobs/pypi/demo-pkg"])
def test_private_channel_is_not_found_like_a_missing_one(channels, visitor, who, url):
    if who:
        visitor.login(who)
    hidden = visitor.get(url)
    missing = visitor.get(url.replace("bobs", "nope"))
    assert hidden.status_code == missing.status_code == 404
    assert text(hidden).replace("bobs", "nope") == text(missing)


def test_public_channel_page_for_anonymous_visitor(channels, visitor):
    page = visitor.get("/channels/open")
    assert page.status_code == 200
    assert "Members" not in text(page) and "Upload with twine" not in text(page)


def test_signed_in_user_creates_a_channel_and_owns_it(repo, visitor):
    repo.user("carol")
    visitor.login("carol")
    response = visitor.post("/channels", name="carols", visibility="public")
    assert response.status_code == 303 and response.headers["Location"] == "/channels/carols"
    channel = accounts.find_channel(get_db(), "carols")
    assert channel["public"] == 1
    members = accounts.list_members(get_db(), channel["id"])
    assert [(m["name"], m["role"]) for m in members] == [("carol", "owner")]
    assert "Created the public channel" in text(visitor.get("/channels/carols"))


@pytest.mark.parametrize(
    ("name", "message"),
    [("secret", "Channel &#39;secret&#39; already exists"), ("Bad Name", "Invalid channel name")],
)
def test_refused_channel_is_explained_on_the_channels_page(channels, visitor, name, message):
    visitor.login("bob")
    response = visitor.post("/channels", name=name, visibility="private")
    assert response.headers["Location"] == "/channels"
    assert message in text(visitor.get("/channels"))


def test_anonymous_visitor_cannot_create_a_channel(visitor):
    response = visitor.post("/channels", name="anon", visibility="public")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert accounts.find_channel(get_db(), "anon") is None


def test_channel_page_lists_python_and_r_packages_with_search(channels, client, repo, visitor):
    upload(client, repo, twine_form())
    upload(client, repo, r_form())
    visitor.login("alice")
    page = text(visitor.get("/channels/secret"))
    assert "Demo.Pkg" in page and 'href="/channels/secret/cran/abc"' in page
    assert "alice" in page and "1.0" in page
    found = text(visitor.get("/channels/secret?q=Demo_PKG"))
    assert "Demo.Pkg" in found and "/cran/abc" not in found
    assert "/pypi/demo-pkg" not in text(visitor.get("/channels/secret?q=ab%25"))


def test_package_page_shows_metadata_files_and_commands(channels, client, repo, visitor):
    upload(client, repo, twine_form())
    visitor.login("alice")
    page = text(visitor.get("/channels/secret/pypi/demo-pkg"))
    assert "A demo" in page and "demo_pkg-1.0-py3-none-any.whl" in page
    index = "http://__token__:&lt;TOKEN&gt;@localhost/api/repo/secret/simple"
    assert f"pip install --index-url {index} Demo.Pkg" in page
    assert "twine upload --repository-url http://localhost/api/repo/secret dist/*" in page


def test_r_package_page_shows_description_fields(channels, client, repo, visitor):
    upload(client, repo, r_form())
    visitor.login("alice")
    page = text(visitor.get("/channels/secret/cran/abc"))
    assert "R (&gt;= 3.5.0)" in page and "src/contrib" in page
    assert "install.packages(&#34;abc&#34;, repos = &#34;http://localhost/api/repo/t/" in page


def test_public_channel_shows_tokenless_install(channels, client, repo, visitor):
    upload(client, repo, twine_form(), "open")
    page = text(visitor.get("/channels/open/pypi/demo-pkg"))
    assert "pip install --index-url http://localhost/api/repo/open/simple Demo.Pkg" in page


def test_markup_in_package_metadata_is_shown_as_text(channels, client, repo, visitor):
    meta = f"Metadata-Version: 2.1\nName: Demo.Pkg\nVersion: 1.0\nSummary: {SCRIPT}\n"
    upload(client, repo, twine_form(wheel(meta.encode())))
    description = f"Package: abc\nVersion: 2.1\nTitle: {SCRIPT}\nLicense: MIT\n".encode()
    upload(client, repo, r_form(r_source(description)))
    visitor.login("alice")
    for url in ("/channels/secret/pypi/demo-pkg", "/channels/secret/cran/abc"):
        page = text(visitor.get(url))
        assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page
        assert SCRIPT not in page


def test_owners_see_the_mirrors_state_and_never_its_credentials(channels, repo, visitor):
    settings.create(repo.db, channels.channel_id, "pypi", "https://pypi.example.org/simple/",
                    username="ci", password="upstream-secret-1")  # fmt: skip
    repo.db.execute(
        "UPDATE mirrors SET last_error = 'HTTP 503 from upstream',"
        " last_error_at = '2026-11-30T10:00:00.000000Z'"
    )
    accounts.grant(repo.db, channels.channel_id, repo.user("rita"), "read")

    visitor.login("alice")
    page = text(visitor.get("/channels/secret"))
    visitor.post("/logout")
    visitor.login("rita")
    reader_page = text(visitor.get("/channels/secret"))

    assert "Mirrored upstreams" in page and "https://pypi.example.org/simple/" in page
    assert "HTTP 503 from upstream, <time" in page
    assert "upstream-secret-1" not in page
    assert "Mirrored upstreams" not in reader_page


def test_owners_see_an_active_mirrors_sync_list_and_last_sync(channels, repo, visitor):
    settings.create(repo.db, channels.channel_id, "cran", "https://cran.example/",
                    mode="active", sync=("abc", "xyz"))  # fmt: skip
    visitor.login("alice")
    before = text(visitor.get("/channels/secret"))
    repo.db.execute("UPDATE mirrors SET last_sync = '2026-11-30T10:00:00.000000Z',"
                    " sync_result = '2 files cached, 0 problems'")  # fmt: skip
    after = text(visitor.get("/channels/secret"))

    assert "active: syncs abc, xyz every 86400 s; last sync not yet" in before
    assert "</time>: 2 files cached, 0 problems" in after


def test_the_refresh_button_makes_cached_pages_stale(channels, repo, visitor):
    mirror = settings.create(repo.db, channels.channel_id, "pypi", "https://x.example/simple/")
    repo.db.execute(
        "INSERT INTO mirror_pages (mirror_id, key, state, checked, changed)"
        " VALUES (?, 'demo', 'found', 12345, '2026-01-01T00:00:00Z')",
        (mirror.id,),
    )
    visitor.login("alice")

    response = visitor.post("/channels/secret/mirrors/pypi/refresh")

    assert response.status_code == 303
    assert response.location.endswith("/channels/secret#mirrors")
    assert repo.db.execute("SELECT checked FROM mirror_pages").fetchone()[0] == 0
    assert "1 cached pages of https://x.example/simple/ will be checked" in text(
        visitor.get("/channels/secret")
    )
