"""The channels pages: the channels a visitor may see, making a new one, and one channel's
Python projects and R packages (with its members for the owners)."""

from __future__ import annotations

from flask import Blueprint, g, render_template, request, url_for

from .. import accounts, files
from ..db import get_db
from ..mirror import settings
from . import commands, forms
from .session import channel_for, login_required

bp = Blueprint("channels", __name__, url_prefix="/channels")


@bp.get("")
def index():
    """Public channels for everybody; signed-in users also see their own."""
    return render_template("ui/channels.html", channels=accounts.visible_channels(get_db(), g.user))


@bp.post("")
@login_required
def create():
    """Any signed-in user may make a channel; they become its owner."""
    name = request.form.get("name", "").strip()
    public = request.form.get("visibility") == "public"

    def change() -> str:
        accounts.create_channel(get_db(), name, g.user.user_id, public)
        return f"Created the {'public' if public else 'private'} channel '{name}'"

    return forms.finish(change, url_for(".index"), url_for(".show", channel=name))


@bp.get("/<channel>")
def show(channel: str):
    """The channel's packages, searched by `?q=`; upload commands for writers; members for
    owners."""
    row, role = channel_for(channel)
    db, query = get_db(), request.args.get("q", "").strip()
    where = commands.Channel.at(request.host_url, channel)
    writer = accounts.rank(role) >= accounts.rank("write")
    return render_template(
        "ui/channel.html", channel=row, role=role, query=query, roles=accounts.ROLES,
        packages=files.channel_packages(db, row["id"], query),
        uploads=commands.uploads(where, "pypi") + commands.uploads(where, "cran") if writer else [],
        members=accounts.list_members(db, row["id"]) if role == "owner" else [],
        mirrors=settings.listing(db, row["id"]) if role == "owner" else [],
    )  # fmt: skip
