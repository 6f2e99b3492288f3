"""Users over the API, for admins: list, create, show, change (password, disabled, admin)
and delete them, as `repo user ...` does on the server."""

from __future__ import annotations

from .. import accounts
from ..db import get_db
from ..errors import NotFound
from . import shapes
from .routing import endpoint, page

USER = "/users/<name>"


def _user(name: str) -> dict:
    for row in accounts.list_users(get_db()):
        if row["name"].lower() == name.lower():
            return shapes.user(row)
    raise NotFound(f"User '{name}' not found")


@endpoint("GET", "/users", "Every user (admins)", need="admin", query=("offset", "limit"),
          answers={200: "UserList"})  # fmt: skip
def list_users():
    return page([shapes.user(row) for row in accounts.list_users(get_db())])


@endpoint("POST", "/users", "Make a user (admins)", need="admin", body="UserCreate",
          answers={201: "User"}, errors=(409,))  # fmt: skip
def create(body: dict):
    accounts.create_user(get_db(), body["name"], body["password"], body.get("is_admin", False))
    return _user(body["name"]), 201, shapes.location("users_show", name=body["name"])


@endpoint("GET", USER, "One user (admins)", need="admin", answers={200: "User"},
          errors=(404,))  # fmt: skip
def show(name: str):
    return _user(name)


@endpoint("PATCH", USER, "Change a user's password, disabled flag or admin flag (admins)",
          need="admin", body="UserUpdate", answers={200: "User"},
          errors=(404, 409))  # fmt: skip
def update(name: str, body: dict):
    db = get_db()
    user_id = accounts.get_user(db, name)["id"]
    # The changes that may be refused (409: the last admin) first, the password last, so a
    # refusal changes nothing.
    if "is_admin" in body:
        accounts.set_admin(db, user_id, body["is_admin"])
    if "disabled" in body:
        accounts.set_disabled(db, user_id, body["disabled"])
    if "password" in body:
        accounts.set_password(db, user_id, body["password"])
    return _user(name)


@endpoint("DELETE", USER, "Delete a user (admins); their uploads stay", need="admin",
          answers={204: None}, errors=(404, 409))  # fmt: skip
def delete(name: str):
    db = get_db()
    accounts.delete_user(db, accounts.get_user(db, name)["id"])
    return "", 204
