"""The web UI's blueprint `ui`, at `/`: one blueprint per noun nested in it, and the hooks
every page shares: who is signed in, the CSRF check on every POST, and security headers.

The API's routes live under `/api` and `/healthz`; nothing here may answer there.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, redirect, url_for

from .. import responses
from . import admin, channels, display, forms, members, mirrors, packages, session, tokens

bp = Blueprint(responses.UI, __name__)

# No inline script or style, nothing from another origin, no framing: markup that got into a
# package's metadata and past the escaping still could not run (tokens.md §2.5).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
        " frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

for child in (session.bp, channels.bp, packages.bp, members.bp, mirrors.bp, tokens.bp, admin.bp):
    bp.register_blueprint(child)
# In this order: the CSRF error page shows who is signed in.
bp.before_request(session.load_user)
bp.before_request(forms.check_csrf)
bp.add_app_template_filter(display.size, "size")
bp.add_app_template_filter(display.when, "when")
bp.add_app_template_filter(display.newest_first, "newest_first")


@bp.context_processor
def _template_values() -> dict:
    return {"current_user": g.get("user"), "csrf_token": forms.csrf_token}


@bp.after_request
def _secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    # Pages differ per user: no shared cache may keep one.
    response.headers.setdefault("Cache-Control", "private, no-cache")
    return response


@bp.get("/")
def index():
    return redirect(url_for("ui.channels.index"))
