"""A channel's packages and files over the API: list and search packages, show one with its
files, yank, unyank or delete a file."""

from __future__ import annotations

from flask import request
from packaging.utils import canonicalize_name

from .. import auth, files
from ..db import get_db
from ..errors import Invalid, NotFound
from . import shapes
from .channels import CHANNEL
from .routing import argument, endpoint, page

FILE = f"{CHANNEL}/files/<filename>"


@endpoint("GET", f"{CHANNEL}/packages", "A channel's packages; ?family=python|cran, ?q= in"
          " the name", need="anyone", channel="read", query=("family", "q", "offset", "limit"),
          answers={200: "PackageList"})  # fmt: skip
def list_packages(channel):
    family = argument("family")
    rows = files.channel_packages(get_db(), channel["id"], request.args.get("q", "").strip())
    return page([shapes.package(package) for package in rows
                 if family is None or shapes.FAMILY[package["kind"]] == family])  # fmt: skip


@endpoint("GET", f"{CHANNEL}/packages/<any(python, cran):family>/<name>",
          "A package with its files, newest first", need="anyone", channel="read",
          answers={200: "PackageDetail"}, errors=(404,))  # fmt: skip
def show(channel, family: str, name: str):
    kind = shapes.KIND[family]
    key = canonicalize_name(name) if kind == "pypi" else name
    db = get_db()
    found = [package for package in files.channel_packages(db, channel["id"], key)
             if (package["kind"], package["name"]) == (kind, key)]  # fmt: skip
    if not found:
        raise NotFound(f"Package '{name}' not found in channel '{channel['name']}'")
    package, rows = files.package_detail(db, channel["id"], kind, key)
    return {**shapes.package(found[0]),
            "files": [shapes.file(file, package["display_name"]) for file in rows]}  # fmt: skip


def _file(channel_id: int, filename: str):
    """The file of this name; `?subdir=` picks one when an R name is in several trees."""
    rows = files.named(get_db(), channel_id, filename)
    subdir = request.args.get("subdir")
    if subdir is not None:
        rows = [row for row in rows if row["subdir"] == subdir]
    if not rows:
        raise NotFound(f"File '{filename}' not found")
    if len(rows) > 1:
        trees = ", ".join(row["subdir"] for row in rows)
        raise Invalid(f"File '{filename}' is in several trees ({trees}): choose one with ?subdir=")
    return rows[0]


@endpoint("PATCH", FILE, "Yank (PEP 592, with a reason pip shows) or unyank a file (owners)",
          channel="owner", body="FileUpdate", query=("subdir",), answers={200: "File"},
          errors=(404,))  # fmt: skip
def update_file(channel, filename: str, body: dict):
    target = _file(channel["id"], filename)
    db = get_db()
    files.set_yanked_by_id(db, channel["id"], target["id"], body["yanked"],
                           body.get("yanked_reason"), auth.current_identity().user_id)  # fmt: skip
    changed = _file(channel["id"], filename)
    return shapes.file(changed, changed["display_name"])


@endpoint("DELETE", FILE, "Delete a file (owners); its name never holds other content again",
          channel="owner", query=("subdir",), answers={204: None}, errors=(400,))  # fmt: skip
def delete_file(channel, filename: str):
    files.delete_file(get_db(), channel["id"], _file(channel["id"], filename)["id"],
                      auth.current_identity().user_id)  # fmt: skip
    return "", 204
