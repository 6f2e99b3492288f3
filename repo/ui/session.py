"""Who is signed in to the web UI: the sign-in and sign-out pages, the session that remembers
the user, and the checks a page makes on it (signed in, an admin, a role in a channel).

Flask's signed cookie holds the id of a session kept in the database (repo.sessions), a
fingerprint of the user's password hash and the CSRF secret. Every request looks the session
and its user up in one query, so each of these ends it at once, for copies of the cookie too:
signing out, its fixed end (12 hours after sign-in, however busy), disabling the user, and a
new password.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface

from .. import accounts, sessions, throttle
from ..db import Row, get_db
from ..errors import Forbidden, NotFound

bp = Blueprint("session", __name__)


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, but a request without the cookie (every pip, uv, twine
    and R request) gets an empty session without building a signing serializer first."""

    def open_session(self, app, request):
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


@bp.record_once
def _use_cookie_sessions(state) -> None:
    state.app.session_interface = CookieSessions()


WRONG_CREDENTIALS = "Invalid user name or password"


def signed_in() -> accounts.Identity | None:
    """The user whose live session the cookie names, or None (no cookie, or its session was
    ended, has expired, its user is disabled or has a new password)."""
    if "session_id" not in session:
        return None
    return accounts.session_user(get_db(), session["session_id"], session.get("stamp", ""))


def load_user() -> None:
    """Before every request of the UI: the signed-in user as `g.user`, or None."""
    g.user = signed_in()
    if g.user is None and "session_id" in session:
        session.clear()


def login_required(view: Callable) -> Callable:
    """A page for signed-in users: anybody else is sent to sign in, and then back here (to a
    page, not to a form's POST)."""

    @functools.wraps(view)
    def wrapped(**values):
        if g.user is None:
            back = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("ui.session.login", next=back))
        return view(**values)

    return wrapped


def admin_required(view: Callable) -> Callable:
    """A page for admins: anonymous visitors sign in first, other users get 403."""

    @functools.wraps(view)
    def wrapped(**values):
        if not g.user.is_admin:
            raise Forbidden("Only administrators may see this page")
        return view(**values)

    return login_required(wrapped)


def channel_for(name: str, need: str = "read") -> tuple[Row, str]:
    """The channel `name` and the visitor's role in it (accounts.role_in), if at least `need`.

    A channel the visitor may not read is not found, just like a missing one, so private
    names do not leak; one they may read but not `need` in is 403.
    """
    db = get_db()
    channel = accounts.find_channel(db, name)
    role = accounts.role_in(db, g.user, channel) if channel is not None else None
    if role is None:
        raise NotFound(f"Channel '{name}' not found")
    if accounts.rank(role) < accounts.rank(need):
        raise Forbidden(f"Only a member with the role {need} in channel '{name}' may do this")
    return channel, role


def _next_page() -> str:
    # Only a path on this site: never `//evil.example`, an absolute URL, or a line break that
    # could split the Location header (CVE-2019-6802 in pypiserver).
    target = request.values.get("next", "")
    safe = target.isprintable() and not target.startswith(("//", "/\\"))
    if target.startswith("/") and safe:
        return target
    return url_for("ui.channels.index")


def _login_page(error: str | None = None, name: str = "", status: int = 200):
    return render_template("ui/login.html", error=error, name=name, next=_next_page()), status


@bp.get("/login")
def login():
    return _login_page()


@bp.post("/login")
def login_post():
    """Check the password (throttled per address, as the API is), then start a new session."""
    db, address, name = get_db(), request.remote_addr or "unknown", request.form.get("name", "")
    wait = throttle.retry_after(db, address, current_app.config["AUTH_FAILURE_LIMIT"])
    if wait:
        return _login_page(f"Too many failed sign-ins: try again in {wait} s", name, 429)
    identity = accounts.check_password(db, name, request.form.get("password", ""))
    if identity is None:
        throttle.record_failure(db, address)
        return _login_page(WRONG_CREDENTIALS, name)
    # A new session, never the one the visitor had before signing in (session fixation).
    _end_session()
    session.permanent = True
    lifetime = current_app.config["PERMANENT_SESSION_LIFETIME"]
    session.update(
        session_id=sessions.start(db, identity.user_id, lifetime),
        stamp=accounts.session_stamp(db, identity.user_id),
    )
    return redirect(_next_page(), 303)


def _end_session() -> None:
    """Forget the cookie's session here and in the database, where a copy would find it."""
    if "session_id" in session:
        sessions.end(get_db(), session["session_id"])
    session.clear()


@bp.post("/logout")
def logout():
    _end_session()
    flash("Signed out", "ok")
    return redirect(url_for("ui.channels.index"), 303)
