"""R package uploads (`curl -F filetype=cran_source_package -F content=@abc_2.1.tar.gz`):
read DESCRIPTION from inside the archive, place the file where R's contrib.url() looks for it,
then publish it exactly as the Python side does (identical re-upload 200, conflict 409)."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import current_app
from werkzeug.datastructures import MultiDict

from .. import files
from ..accounts import Identity
from ..blobs import PendingBlob
from ..db import get_db
from ..errors import Conflict, Invalid
from . import description

KIND = "cran"
FILETYPES = (description.SOURCE, description.BINARY)
# Every field of an R upload is single: which of two `platform`s would count is an accident.
SINGLE_FIELDS = ("filetype", "platform", "rversion")
_STEM = re.compile(r"(?P<stem>.+?)(?:\.tar\.gz|\.tar\.xz|\.tar\.bz2|\.tar|\.tgz|\.zip)")


def handle(channel, identity: Identity, form: MultiDict,
           uploaded: Callable[[str], tuple[PendingBlob, str] | None]) -> files.Stored:  # fmt: skip
    """Take one R package upload to `channel`."""
    filetype = form.get("filetype", "")
    if filetype not in FILETYPES:
        raise Invalid(f"Unknown filetype '{filetype}': use {' or '.join(FILETYPES)}")
    part = uploaded("content")
    if part is None:
        raise Invalid("Missing form field 'content': the package file (-F content=@FILE)")
    pending, client_name = part
    pending.flush()
    package = description.read_package(pending.path, filetype)
    _check_client_name(client_name, package)
    subdir, filename = description.placement(
        package, filetype, form.get("rversion") or None, form.get("platform") or None
    )
    new = files.NewFile(
        kind=KIND, name=package.package, display_name=package.package, version=package.version,
        filename=filename, sha256=pending.sha256, size=pending.size, subdir=subdir,
        metadata={**package.fields, "MD5sum": pending.digests()["md5"],
                  "NeedsCompilation": "yes" if package.needs_compilation else "no"},
    )  # fmt: skip
    db = get_db()
    if files.existing(db, channel["id"], new):
        return files.Stored(KIND, subdir, filename, created=False)
    _check_version_is_free(db, channel["id"], new)
    created = files.publish(db, channel["id"], new, identity.user_id, [pending])
    if created:
        current_app.logger.info("cran upload %s to %s/%s", filename, channel["name"], subdir)
    return files.Stored(KIND, subdir, filename, created)


def _check_client_name(client_name: str, package: description.RPackage) -> None:
    """The uploaded file's name must name the package and version its DESCRIPTION does."""
    expected = f"{package.package}_{package.version}"
    match = _STEM.fullmatch(client_name)
    stem = match["stem"] if match else client_name
    if stem != expected and not stem.startswith(f"{expected}_R_"):
        raise Invalid(
            f"File name '{client_name}' does not match DESCRIPTION Package '{package.package}'"
            f" Version '{package.version}' (expected {expected}.tar.gz or similar)"
        )


def _check_version_is_free(db, channel_id: int, new: files.NewFile) -> None:
    """One file per package version in each contrib directory (cran.md §8). The very same
    file does not count: an identical upload may have landed since `existing` looked (two
    at once), and publish then answers it as the re-upload it is."""
    taken = db.execute(
        "SELECT files.filename FROM files JOIN packages ON packages.id = files.package_id"
        " WHERE files.channel_id = ? AND files.kind = ? AND files.subdir = ?"
        " AND packages.name = ? AND files.version = ?"
        " AND NOT (files.filename = ? AND files.sha256 = ?)",
        (channel_id, KIND, new.subdir, new.name, new.version, new.filename, new.sha256),
    ).fetchone()
    if taken is not None:
        raise Conflict(
            f"File already exists: {new.name} {new.version} is in {new.subdir} as '{taken[0]}'",
            code="file_exists",
        )
