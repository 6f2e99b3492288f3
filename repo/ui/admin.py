"""The admin pages (admins only): users (create, disable or enable, reset a password) and
every channel."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, session, url_for

from .. import accounts
from ..db import get_db
from ..errors import Invalid
from . import forms
from .session import admin_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("")
@admin_required
def index():
    return redirect(url_for(".users"))


@bp.get("/users")
@admin_required
def users():
    return render_template("ui/admin_users.html", users=accounts.list_users(get_db()))


@bp.post("/users")
@admin_required
def create_user():
    name, password = request.form.get("name", "").strip(), request.form.get("password", "")
    admin = request.form.get("admin") == "on"

    def change() -> str:
        accounts.create_user(get_db(), name, password, admin)
        return f"Created {'admin' if admin else 'user'} '{name}'"

    return forms.finish(change, url_for(".users"))


@bp.post("/users/<name>/disabled")
@admin_required
def set_disabled(name: str):
    """Disable (`disabled=1`) or enable (`disabled=0`) a user; never yourself."""
    disabled, db = request.form.get("disabled") == "1", get_db()

    def change() -> str:
        user = accounts.get_user(db, name)
        if disabled and user["id"] == g.user.user_id:
            raise Invalid("You cannot disable yourself")
        accounts.set_disabled(db, user["id"], disabled)
        return f"{'Disabled' if disabled else 'Enabled'} user '{name}'"

    return forms.finish(change, url_for(".users"))


@bp.post("/users/<name>/password")
@admin_required
def reset_password(name: str):
    """Set a user's password; their sessions end, except this one when it is your own."""
    db = get_db()

    def change() -> str:
        user_id = accounts.get_user(db, name)["id"]
        accounts.set_password(db, user_id, request.form.get("password", ""))
        if user_id == g.user.user_id:
            session["stamp"] = accounts.session_stamp(db, user_id)
        return f"Set a new password for '{name}'"

    return forms.finish(change, url_for(".users"))


@bp.get("/channels")
@admin_required
def channels():
    return render_template("ui/admin_channels.html", channels=accounts.all_channels(get_db()))
