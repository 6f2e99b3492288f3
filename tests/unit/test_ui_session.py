"""The web UI's session: signing in and out, the server-side session and its fixed end, CSRF
on every form, security headers on every page, cookies, and errors shown as pages (while the
API keeps its text errors)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask, url_for

from repo import accounts, config, sessions
from repo.db import get_db, now
from repo.ui import routes as ui_routes

from ..conftest import dump, make_app
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
        assert sessions.find_user(get_db(), session["session_id"])["name"] == "alice"


def test_signing_in_again_ends_the_session_before(repo, visitor):
    repo.user("alice")
    visitor.login("alice")
    before = visitor.copy()
    visitor.login("alice")
    assert visitor.get("/tokens").status_code == 200
    assert before.get("/tokens").status_code == 302
    assert get_db().execute("SELECT count(*) FROM sessions").fetchone()[0] == 1


def test_database_holds_only_the_sha256_of_a_session_id(repo, visitor):
    repo.user("alice")
    visitor.login("alice")
    with visitor.client.session_transaction() as session:
        session_id = session["session_id"]
    db = get_db()
    hashes = [row["hash"] for row in db.execute("SELECT hash FROM sessions")]
    assert hashes == [hashlib.sha256(session_id.encode()).hexdigest()]
    assert session_id not in dump(db)


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


def _disable_and_enable(db, user_id: int) -> None:
    accounts.set_disabled(db, user_id, True)
    accounts.set_disabled(db, user_id, False)


ENDINGS = {
    "sign-out": lambda visitor, db, user_id: visitor.post("/logout"),
    "disabled": lambda visitor, db, user_id: accounts.set_disabled(db, user_id, True),
    "disabled-then-enabled": lambda visitor, db, user_id: _disable_and_enable(db, user_id),
    "new-password": lambda visitor, db, user_id: accounts.set_password(db, user_id, "new-pass"),
    "deleted": lambda visitor, db, user_id: db.execute("DELETE FROM users WHERE id = ?",
                                                       (user_id,)),
}  # fmt: skip


@pytest.mark.parametrize("end", ENDINGS.values(), ids=ENDINGS.keys())
def test_a_session_ends_for_every_copy_of_its_cookie(repo, visitor, end):
    alice = repo.user("alice")
    visitor.login("alice")
    copy = visitor.copy()
    assert copy.get("/tokens").status_code == 200
    end(visitor, get_db(), alice)
    for browser in (visitor, copy):
        response = browser.get("/tokens")
        assert response.status_code == 302
        assert response.headers["Location"] == "/login?next=/tokens"
        with browser.client.session_transaction() as session:
            assert "session_id" not in session


def test_a_session_ends_a_fixed_time_after_sign_in_however_often_it_is_used(app, repo):
    alice, db = repo.user("alice"), get_db()
    lifetime = app.config["PERMANENT_SESSION_LIFETIME"]
    began = datetime(2030, 1, 1, tzinfo=UTC)
    session_id = sessions.start(db, alice, lifetime, at=began)
    every_minute = (began + timedelta(minutes=minute) for minute in range(12 * 60))
    assert lifetime == timedelta(hours=12)
    assert all(sessions.find_user(db, session_id, at) for at in every_minute)
    assert sessions.find_user(db, session_id, began + lifetime) is None


def test_using_a_session_never_moves_its_end_and_past_it_is_the_sign_in_page(repo, visitor):
    repo.user("alice")
    visitor.login("alice")
    db = get_db()
    times = "SELECT created, expires FROM sessions"
    [(created, expires)] = db.execute(times).fetchall()
    for _ in range(3):
        assert visitor.get("/tokens").status_code == 200
    assert [tuple(row) for row in db.execute(times)] == [(created, expires)]
    assert datetime.fromisoformat(expires) - datetime.fromisoformat(created) == timedelta(hours=12)
    # The 12 hours are up: the clock reaches the row's end.
    db.execute("UPDATE sessions SET expires = ?", (now(),))
    response = visitor.get("/tokens", follow_redirects=True)
    assert response.request.path == "/login" and 'name="password"' in text(response)


def test_a_page_reads_its_session_and_user_in_one_query(repo, visitor):
    repo.user("alice")
    visitor.login("alice")
    statements: list[str] = []
    get_db().set_trace_callback(statements.append)
    assert visitor.get("/tokens").status_code == 200
    get_db().set_trace_callback(None)
    about_sessions = [sql for sql in statements if "sessions" in sql]
    assert len(about_sessions) == 1 and about_sessions[0].startswith("SELECT users.*")
    assert not [sql for sql in statements if sql.startswith("SELECT * FROM users")]


def test_starting_a_session_deletes_those_that_have_ended(app, repo):
    alice, db = repo.user("alice"), get_db()
    lifetime = app.config["PERMANENT_SESSION_LIFETIME"]
    began = datetime(2030, 1, 1, tzinfo=UTC)
    sessions.start(db, alice, lifetime, at=began)
    live = sessions.start(db, alice, lifetime, at=began + lifetime / 2)
    sessions.start(db, alice, lifetime, at=began + lifetime)
    assert db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 2
    assert sessions.find_user(db, live, began + lifetime) is not None


def test_sign_in_is_throttled_per_address(tmp_path):
    app = make_app(tmp_path / "t", AUTH_FAILURE_LIMIT=2)
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
    app = make_app(tmp_path / "s", SECURE_COOKIES=True)
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
