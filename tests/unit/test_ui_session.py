"""The web UI's session: signing in and out, CSRF on every form, security headers on every
page, cookies, and errors shown as pages (while the API keeps its text errors)."""

from __future__ import annotations

import pytest
from flask import Flask, url_for

from repo import accounts, config, create_app
from repo.db import get_db
from repo.ui import routes as ui_routes

from .webui import Visitor, text

pytestmark = pytest.mark.usefixtures("fast_passwords")

# A value for every variable of a UI route; the CSRF check runs before the view looks at them.
SAMPLE = {"channel": "ch", "kind": "pypi", "name": "bob", "user": "bob", "file_id": 1,
          "token_id": 1}  # fmt: skip


def _ui_urls(method: str) -> list[tuple[str, str]]:
    """(endpoint, URL) of every route of the UI blueprint that answers `method`, so that a
    new form cannot forget the CSRF check, nor a new page its headers."""
    app = Flask(__name__)
    app.register_blueprint(ui_routes.bp)
    with app.test_request_context():
        return sorted(
            (rule.endpoint, url_for(rule.endpoint, **{k: SAMPLE[k] for k in rule.arguments}))
            for rule in app.url_map.iter_rules()
            if method in rule.methods and rule.endpoint.startswith("ui.")
        )


POSTS = _ui_urls("POST")
PAGES = [url for _, url in _ui_urls("GET")] + ["/channels/nope"]


def _state(db) -> list:
    tables = ("users", "channels", "memberships", "tokens", "files", "packages")
    return [db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall() for table in tables]


@pytest.fixture
def admin(repo, visitor):
    """An admin signed in, owning channel 'ch'; bob has a token."""
    root = repo.user("root", admin=True)
    repo.channel("ch", root)
    repo.token(repo.user("bob"))
    visitor.login("root")
    return visitor


def test_every_form_is_collected():
    endpoints = {endpoint for endpoint, _ in POSTS}
    expected = {"ui.session.login_post", "ui.channels.create", "ui.tokens.create",
                "ui.tokens.revoke", "ui.packages.delete", "ui.admin.create_user"}  # fmt: skip
    assert expected <= endpoints


@pytest.mark.parametrize(("endpoint", "url"), POSTS)
def test_every_ui_post_needs_the_csrf_token(admin, endpoint, url):
    before = _state(get_db())
    form = {"name": "new", "user": "bob", "role": "read", "password": "password-2", "yanked": "1",
            "disabled": "1", "kind": "user", "expires": "7d"}  # fmt: skip
    for sent in ({}, {"csrf_token": "wrong-token"}):
        response = admin.client.post(url, data={**form, **sent})
        assert response.status_code == 400, (endpoint, response.status)
        assert "without its security token (CSRF)" in text(response)
        assert response.mimetype == "text/html"
    assert _state(get_db()) == before


def test_wrong_password_and_unknown_user_get_the_same_generic_message(repo, visitor):
    repo.user("alice")
    for name, password in (("alice", "not-her-password"), ("nobody", "alice-password")):
        response = visitor.login(name, password)
        assert "Invalid user name or password" in text(response)
        assert "Signed in as" not in text(response)
    assert visitor.get("/tokens").status_code == 302


def test_sign_in_starts_a_new_session(repo, visitor):
    repo.user("alice")
    with visitor.client.session_transaction() as session:
        session["csrf"] = "planted-by-an-attacker"
        session["planted"] = "yes"
    form = {"name": "alice", "password": "alice-password", "csrf_token": "planted-by-an-attacker"}
    response = visitor.client.post("/login", data=form)
    assert response.status_code == 303
    with visitor.client.session_transaction() as session:
        assert "planted" not in session
        assert session.get("csrf") != "planted-by-an-attacker"
        assert session["user_id"] == accounts.get_user(get_db(), "alice")["id"]


@pytest.mark.parametrize(
    ("next_page", "lands_on"),
    [("/tokens", "/tokens"), ("//evil.example/x", "/channels"),
     ("https://evil.example", "/channels"), ("/\\evil.example", "/channels"),
     ("/x\r\nSet-Cookie: planted=1", "/channels")],
)  # fmt: skip
def test_sign_in_returns_only_to_a_page_of_this_site(repo, visitor, next_page, lands_on):
    repo.user("alice")
    response = visitor.post("/login", name="alice", password="alice-password", next=next_page)
    assert response.status_code == 303
    assert response.headers["Location"] == lands_on


def test_a_page_for_signed_in_users_sends_others_to_sign_in(visitor):
    response = visitor.get("/tokens")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/tokens"


def test_sign_out_ends_the_session(repo, visitor):
    repo.user("alice")
    visitor.login("alice")
    assert visitor.get("/tokens").status_code == 200
    assert visitor.post("/logout").status_code == 303
    assert visitor.get("/tokens").status_code == 302


@pytest.mark.parametrize(
    "change",
    [lambda db, user_id: accounts.set_disabled(db, user_id, True),
     lambda db, user_id: accounts.set_password(db, user_id, "a-new-password"),
     lambda db, user_id: db.execute("DELETE FROM users WHERE id = ?", (user_id,))],
    ids=["disabled", "new-password", "deleted"],
)  # fmt: skip
def test_a_session_ends_when_its_user_changes(repo, visitor, change):
    alice = repo.user("alice")
    visitor.login("alice")
    change(get_db(), alice)
    assert visitor.get("/tokens").status_code == 302
    with visitor.client.session_transaction() as session:
        assert "user_id" not in session


def test_sign_in_is_throttled_per_address(tmp_path):
    app = create_app({"DATA_DIR": str(tmp_path / "t"), "TESTING": True, "AUTH_FAILURE_LIMIT": 2})
    with app.app_context():
        accounts.create_user(get_db(), "alice", "alice-password")
        visitor = Visitor(app.test_client())
        for _ in range(2):
            assert "Invalid user name or password" in text(visitor.login("alice", "wrong-pass"))
        response = visitor.login("alice")
        assert response.status_code == 429
        assert "Too many failed sign-ins" in text(response)


def test_session_cookie_is_http_only_and_same_site(repo, visitor):
    repo.user("alice")
    cookie = visitor.login("alice").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_secure_cookies_setting(tmp_path):
    assert config.from_environ({"REPO_SECURE_COOKIES": "1"})["SECURE_COOKIES"] is True
    assert config.from_environ({"REPO_SECURE_COOKIES": "off"})["SECURE_COOKIES"] is False
    assert config.from_environ({})["SECURE_COOKIES"] is False
    with pytest.raises(ValueError):
        config.from_environ({"REPO_SECURE_COOKIES": "maybe"})
    app = create_app({"DATA_DIR": str(tmp_path / "s"), "SECURE_COOKIES": True})
    assert app.config["SESSION_COOKIE_SECURE"] is True


@pytest.mark.parametrize("page", PAGES)
def test_security_headers_on_every_page(admin, page):
    response = admin.get(page)
    assert response.status_code in (200, 302, 404), response.status  # 404: no such package
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_ui_errors_are_pages_and_api_errors_stay_text(client):
    page = client.get("/channels/nope")
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "Channel &#39;nope&#39; not found" in text(page)
    api = client.get("/api/repo/nope/simple/")
    assert api.status == "401 Credentials required" and api.mimetype == "text/plain"
    assert "Content-Security-Policy" not in api.headers
