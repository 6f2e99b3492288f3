"""The web UI's forms: the CSRF token every POST carries, and how a form's outcome is shown.

The token is a random secret kept in the signed session cookie and echoed in a hidden field:
another site can make a browser send the cookie, but cannot read the page to learn the field.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable

from flask import Response, flash, redirect, request, session

from ..errors import Invalid, RepoError

FIELD = "csrf_token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def csrf_token() -> str:
    """This session's CSRF token, made on first use (a fresh session gets a fresh one)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_matches(sent: str) -> bool:
    """Whether `sent` is this session's CSRF token (never true for a session without one)."""
    expected = session.get("csrf", "").encode()
    return bool(expected) and hmac.compare_digest(sent.encode(), expected)


def check_csrf() -> None:
    """Before every request of the UI: anything but a read must carry the session's token."""
    if request.method in SAFE_METHODS:
        return
    if not csrf_matches(request.form.get(FIELD, "")):
        raise Invalid(
            "This form was sent without its security token (CSRF) or with an old one:"
            " reload the page and try again"
        )


def finish(change: Callable[[], str], back: str, done: str | None = None) -> Response:
    """Make a form's change, then go to `done` (or `back`) and say what happened there.

    `change` returns the message for success; a refused change (a name already taken, a short
    password, the last owner) is shown on the page at `back` rather than as an error page.
    """
    try:
        flash(change(), "ok")
    except RepoError as error:
        flash(error.message, "error")
        return redirect(back, 303)
    return redirect(done or back, 303)
