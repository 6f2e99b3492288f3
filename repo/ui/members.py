"""A channel's members, managed by its owners: add a user or change their role (read, write
or owner), and remove them. The last owner cannot be demoted or removed (accounts.grant)."""

from __future__ import annotations

from flask import Blueprint, request, url_for

from .. import accounts
from ..db import get_db
from . import forms
from .session import channel_for, login_required

bp = Blueprint("members", __name__, url_prefix="/channels/<channel>/members")


def _members_section(channel: str) -> str:
    return url_for("ui.channels.show", channel=channel, _anchor="members")


@bp.post("")
@login_required
def grant(channel: str):
    """Give the user named in the form the role in the form, adding them if need be."""
    row, _ = channel_for(channel, "owner")
    db, name, role = get_db(), request.form.get("user", "").strip(), request.form.get("role", "")

    def change() -> str:
        accounts.grant(db, row["id"], accounts.get_user(db, name)["id"], role)
        return f"'{name}' is now {role} in channel '{channel}'"

    return forms.finish(change, _members_section(channel))


@bp.post("/<user>/remove")
@login_required
def remove(channel: str, user: str):
    row, _ = channel_for(channel, "owner")
    db = get_db()

    def change() -> str:
        accounts.remove_member(db, row["id"], accounts.get_user(db, user)["id"])
        return f"Removed '{user}' from channel '{channel}'"

    return forms.finish(change, _members_section(channel))
