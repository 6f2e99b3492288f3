"""The JSON the API answers with, made from the rows the domain modules return: one function
per shape of schemas.RESPONSES, shared by every route that shows one (the upload too)."""

from __future__ import annotations

from flask import request, url_for

from .. import files
from ..accounts import TOKEN_FIELDS
from ..db import Row, get_db
from ..pypi.metadata import filetype_for

# The API says python|cran; the database, like the URLs, pypi|cran.
FAMILY = {"pypi": "python", "cran": "cran"}
KIND = {family: kind for kind, family in FAMILY.items()}
SOURCE_TREE = "src/contrib"


def token(row: dict) -> dict:
    """A token as `repo token list --json` shows it (never its secret)."""
    return {key: row[key] for key in TOKEN_FIELDS}


def new_token(token_id: int, secret: str, row: dict) -> dict:
    """The one answer that carries a token's secret: made, logged in or rotated."""
    return {"token": secret, "id": token_id, "label": row["label"], "scope": row["scope"],
            "channel": row["channel"], "expires": row["expires"]}  # fmt: skip


def channel(row, role: str | None) -> dict:
    """A channel row of accounts' summaries (counts and size included), as `role` sees it."""
    name = row["name"]
    # The upload rule has both forms; the channel's URLs are named from the one without a slash.
    upload = url_for("upload.upload", channel=name, _external=True).rstrip("/")
    return {
        "name": name,
        "privacy": "public" if row["public"] else "private",
        "description": row["description"],
        "my_role": role,
        "package_count": row["packages"],
        "file_count": row["file_count"],
        "size_bytes": row["size_bytes"],
        "created": row["created"],
        "urls": {"upload": upload, "simple": f"{upload}/simple/", "cran": f"{upload}/cran"},
    }


def _file_kind(row: Row) -> str:
    """bdist_wheel or sdist for Python, source or binary (by its tree) for R."""
    if row["kind"] == "pypi":
        return filetype_for(row["filename"])
    return "source" if row["subdir"] == SOURCE_TREE else "binary"


def file(row: Row, name: str) -> dict:
    """A file row of its package `name` (the display name)."""
    return {
        "filename": row["filename"], "family": FAMILY[row["kind"]], "kind": _file_kind(row),
        "name": name, "version": row["version"], "sha256": row["sha256"],
        "size": row["size"], "uploaded": row["uploaded"], "subdir": row["subdir"],
        "yanked": bool(row["yanked"]), "yanked_reason": row["yanked_reason"],
        "requires_python": row["requires_python"],
    }  # fmt: skip


def stored_file(channel_row, stored: files.Stored) -> dict:
    """The file an upload stored (or found already there), for `Accept: application/json`."""
    rows = files.named(get_db(), channel_row["id"], stored.filename)
    [row] = [row for row in rows if (row["kind"], row["subdir"]) == (stored.kind, stored.subdir)]
    return file(row, row["display_name"])


def event(row: Row) -> dict:
    """A row of repo.snapshots.history.of_channel: the file as the event left it (as it was,
    for a delete). `yanked_reason` only on a yank: a delete's row keeps the reason of an
    earlier yank, which is not the delete's."""
    return {
        "at": row["at"], "event": row["event"], "family": FAMILY[row["kind"]],
        "kind": _file_kind(row), "package": row["display_name"], "version": row["version"],
        "filename": row["filename"], "subdir": row["subdir"], "sha256": row["sha256"],
        "size": row["size"],
        "yanked_reason": row["yanked_reason"] if row["event"] == "yank" else None,
        "actor": row["actor"],
    }  # fmt: skip


def package(row: dict) -> dict:
    """A package of files.channel_packages."""
    return {"family": FAMILY[row["kind"]], "name": row["name"],
            "display_name": row["display_name"], "versions": row["versions"],
            "file_count": row["files"]}  # fmt: skip


def user(row) -> dict:
    return {"name": row["name"], "is_admin": bool(row["is_admin"]),
            "disabled": bool(row["disabled"]), "created": row["created"],
            "channels": row["channels"], "tokens": row["tokens"]}  # fmt: skip


def location(endpoint: str, **values: str) -> dict[str, str]:
    """The Location header of a 201, naming the new resource."""
    return {"Location": url_for(f"{request.blueprint}.{endpoint}", **values)}
