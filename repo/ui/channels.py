"""The channels pages: the channels a visitor may see, making a new one, and one channel's
Python projects and R packages (with its members and settings for the owners: description,
privacy, and deleting it once its name is typed)."""

from __future__ import annotations

from flask import Blueprint, current_app, g, render_template, request, url_for

from .. import accounts, files
from ..db import get_db
from ..errors import Invalid
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
    """The channel's packages, searched by `?q=`; the uploader and upload commands for
    writers; members for owners."""
    row, role = channel_for(channel)
    db, query = get_db(), request.args.get("q", "").strip()
    where = commands.Channel.at(request.host_url, channel)
    writer = accounts.rank(role) >= accounts.rank("write")
    return render_template(
        "ui/channel.html", channel=row, role=role, query=query, roles=accounts.ROLES,
        packages=files.channel_packages(db, row["id"], query),
        uploads=commands.uploads(where, "pypi") + commands.uploads(where, "cran") if writer else [],
        upload_url=url_for("upload.upload", channel=channel),
        max_upload_bytes=current_app.config["MAX_CONTENT_LENGTH"],
        members=accounts.list_members(db, row["id"]) if role == "owner" else [],
        summary=accounts.channel_summary(db, row["id"]) if role == "owner" else None,
        mirrors=settings.listing(db, row["id"]) if role == "owner" else [],
    )  # fmt: skip


def _settings_section(channel: str) -> str:
    return url_for(".show", channel=channel, _anchor="settings")


@bp.post("/<channel>/settings")
@login_required
def update(channel: str):
    """The owner changes the description and privacy; a field the form leaves out stays."""
    row, _ = channel_for(channel, "owner")
    description = request.form.get("description")
    visibility = request.form.get("visibility")

    def change() -> str:
        if visibility not in (None, "public", "private"):
            raise Invalid(f"Unknown visibility '{visibility}': use public or private")
        public = None if visibility is None else visibility == "public"
        text = None if description is None else description.strip()
        accounts.update_channel(get_db(), row["id"], public=public, description=text)
        return f"Saved the settings of channel '{channel}'"

    return forms.finish(change, _settings_section(channel))


@bp.post("/<channel>/delete")
@login_required
def delete(channel: str):
    """The owner deletes the channel with all it holds, once they typed its name."""
    row, _ = channel_for(channel, "owner")

    def change() -> str:
        if request.form.get("confirm", "").strip() != channel:
            raise Invalid(f"Type the channel's name, {channel}, to delete it")
        files_gone = accounts.channel_summary(get_db(), row["id"])["file_count"]
        accounts.delete_channel(get_db(), row["id"], force=True)
        return f"Deleted channel '{channel}' and its {files_gone} files"

    return forms.finish(change, _settings_section(channel), url_for(".index"))
