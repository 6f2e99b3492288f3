"""Channels over the API: the visible ones, making one, and its owner's settings (privacy,
description) and deletion."""

from __future__ import annotations

from flask import request

from .. import accounts, auth
from ..db import get_db
from . import shapes
from .routing import argument, caller, endpoint, page

CHANNEL = "/channels/<channel>"


def answer(row) -> dict:
    """A channel's JSON as the caller sees it."""
    db = get_db()
    role = accounts.role_in(db, auth.current_identity(), row)
    return shapes.channel(accounts.channel_summary(db, row["id"]), role)


@endpoint("GET", "/channels", "The channels you may read (?mine=1: those you are a member"
          " of), by name; ?q= filters on the name", need="anyone",
          query=("q", "mine", "offset", "limit"), answers={200: "ChannelList"})  # fmt: skip
def list_channels():
    rows = accounts.visible_channels(get_db(), auth.current_identity())
    query = request.args.get("q", "").strip().lower()
    mine = argument("mine", "0") == "1"
    return page([
        shapes.channel(row, row["role"]) for row in rows
        if query in row["name"] and (not mine or row["member_role"] is not None)
    ])  # fmt: skip


@endpoint("POST", "/channels", "Make a channel (you become its owner); private unless asked",
          need="manage", body="ChannelCreate", answers={201: "Channel"},
          errors=(409,))  # fmt: skip
def create(body: dict):
    name = body["name"]
    public = body.get("privacy", "private") == "public"
    db = get_db()
    accounts.create_channel(db, name, caller().user_id, public, body.get("description", ""))
    row = accounts.find_channel(db, name, auth.current_identity())
    return answer(row), 201, shapes.location("channels_show", channel=name)


@endpoint("GET", CHANNEL, "A channel you may read", need="anyone", channel="read",
          answers={200: "Channel"})  # fmt: skip
def show(channel):
    return answer(channel)


@endpoint("PATCH", CHANNEL, "Change a channel's privacy or description (owners)",
          channel="owner", body="ChannelUpdate", answers={200: "Channel"})  # fmt: skip
def update(channel, body: dict):
    privacy = body.get("privacy")
    public = None if privacy is None else privacy == "public"
    db = get_db()
    accounts.update_channel(db, channel["id"], public, body.get("description"))
    return answer(accounts.find_channel(db, channel["name"], auth.current_identity()))


@endpoint("DELETE", CHANNEL, "Delete a channel (owners); one holding files only with ?force=1",
          channel="owner", query=("force",), answers={204: None}, errors=(409,))  # fmt: skip
def delete(channel):
    accounts.delete_channel(get_db(), channel["id"], force=argument("force", "0") == "1")
    return "", 204
