"""A channel's upstreams as its owners see them: the state shown on the channel page, and the
refresh button, which makes every cached page ask upstream again on its next request."""

from __future__ import annotations

from flask import Blueprint, url_for

from ..db import get_db
from ..errors import NotFound
from ..mirror import settings
from . import forms
from .session import channel_for, login_required

bp = Blueprint("mirrors", __name__, url_prefix="/channels/<channel>/mirrors")


@bp.post("/<kind>/refresh")
@login_required
def refresh(channel: str, kind: str):
    row, _ = channel_for(channel, "owner")
    db = get_db()

    def change() -> str:
        mirror = settings.find(db, row["id"], kind) if kind in settings.KINDS else None
        if mirror is None:
            raise NotFound(f"Channel '{channel}' mirrors no {kind} upstream")
        count = settings.mark_stale(db, mirror.id)
        return f"{count} cached pages of {mirror.source} will be checked on their next request"

    return forms.finish(change, url_for("ui.channels.show", channel=channel, _anchor="mirrors"))
