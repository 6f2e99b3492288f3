"""The tokens page: the signed-in user's own tokens (never their secrets), making a user or
channel token, and revoking one.

A new token's secret is shown once, in the answer to the POST that made it: never in a
redirect URL, the session or a log, and with `Cache-Control: no-store`.
"""

from __future__ import annotations

from flask import Blueprint, flash, g, make_response, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from .. import accounts
from ..db import get_db, now
from ..errors import Invalid, RepoError
from . import commands
from .session import channel_for, login_required

bp = Blueprint("tokens", __name__, url_prefix="/tokens")

EXPIRIES = ("7d", "30d", "90d", "365d", "never")
DEFAULT_EXPIRY = "30d"  # PSM's and conda-repo-cli's default (tokens.md §2.2)


def _page(error: str | None = None, status: int = 200):
    db = get_db()
    return render_template(
        "ui/tokens.html", tokens=accounts.list_tokens(db, g.user.user_id)[::-1], now=now(),
        channels=accounts.visible_channels(db, g.user), expiries=EXPIRIES,
        form=request.form or {"expires": DEFAULT_EXPIRY}, error=error,
    ), status  # fmt: skip


@bp.get("")
@login_required
def index():
    return _page()


@bp.post("")
@login_required
def create():
    """Make the token and show its secret, this once; a refused form comes back with why."""
    try:
        made = _create(request.form)
    except RepoError as error:
        return _page(error.message, error.status)
    response = make_response(render_template("ui/token_created.html", **made))
    response.headers["Cache-Control"] = "no-store"
    return response


def _create(form: MultiDict) -> dict:
    """Make the token the form describes; return what the page showing it needs."""
    label = form.get("label", "").strip()
    expiry = form.get("expires", DEFAULT_EXPIRY)
    expires_in = None if expiry == "never" else accounts.parse_duration(expiry)
    channel, scope = None, None
    if form.get("kind") == "channel":
        scope = form.get("scope", "")
        if scope not in accounts.SCOPES:
            raise Invalid("Choose the scope of a channel token: read or write")
        # A token could never do more than its user may; refuse to make one that looks as if.
        channel, _ = channel_for(form.get("channel", ""), scope)
    db = get_db()
    channel_id = channel["id"] if channel else None
    _, secret = accounts.create_token(db, g.user.user_id, channel_id, scope, expires_in, label)
    where = commands.Channel.at(request.host_url, channel["name"] if channel else "CHANNEL")
    lines = commands.installs(where, "pypi", "PACKAGE", secret)
    lines += commands.installs(where, "cran", "PACKAGE", secret)
    if scope != "read":
        lines += commands.uploads(where, "pypi", secret) + commands.uploads(where, "cran", secret)
    return {"secret": secret, "label": label, "channel": channel, "scope": scope,
            "expiry": expiry, "commands": lines}  # fmt: skip


@bp.post("/<int:token_id>/revoke")
@login_required
def revoke(token_id: int):
    """Revoke one of your own tokens; anybody else's is not found."""
    accounts.revoke_own_token(get_db(), g.user.user_id, token_id)
    flash(f"Revoked token {token_id}: it stops working at once", "ok")
    return redirect(url_for(".index"), 303)
