"""A channel's members over the API (owners only): list them, set a role, remove one; the
last owner stays."""

from __future__ import annotations

from .. import accounts
from ..db import get_db
from ..errors import NotFound
from .channels import CHANNEL
from .routing import endpoint, page

MEMBER = f"{CHANNEL}/members/<user>"


def _members(channel_id: int) -> list[dict]:
    rows = accounts.list_members(get_db(), channel_id)
    return [{"user": row["name"], "role": row["role"]} for row in rows]


def _member(channel_id: int, user: str) -> dict:
    for member in _members(channel_id):
        if member["user"].lower() == user.lower():
            return member
    raise NotFound(f"User '{user}' is not a member of the channel")


@endpoint("GET", f"{CHANNEL}/members", "A channel's members and their roles (owners)",
          channel="owner", query=("offset", "limit"), answers={200: "MemberList"})  # fmt: skip
def list_members(channel):
    return page(_members(channel["id"]))


@endpoint("PUT", MEMBER, "Give a user a role in a channel (owners); the last owner stays",
          channel="owner", body="MemberSet", answers={200: "Member"}, errors=(409,))  # fmt: skip
def set_role(channel, user: str, body: dict):
    db = get_db()
    accounts.grant(db, channel["id"], accounts.get_user(db, user)["id"], body["role"])
    return _member(channel["id"], user)


@endpoint("DELETE", MEMBER, "Take a user out of a channel (owners); the last owner stays",
          channel="owner", answers={204: None}, errors=(409,))  # fmt: skip
def remove(channel, user: str):
    _member(channel["id"], user)
    db = get_db()
    accounts.remove_member(db, channel["id"], accounts.get_user(db, user)["id"])
    return "", 204
