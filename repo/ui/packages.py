"""A package's page (its metadata, description, install commands, now and as of its newest
upload, and files by version) and what a channel's owners may do to a file: yank, unyank or
delete it."""

from __future__ import annotations

import functools
import json
from datetime import datetime

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from markupsafe import Markup

from .. import files
from ..db import get_db
from ..errors import NotFound
from ..snapshots import instant
from . import commands, display, readme
from .session import channel_for, login_required

bp = Blueprint("packages", __name__, url_prefix="/channels/<channel>")


@bp.get("/<any(pypi, cran):kind>/<name>")
def show(channel: str, kind: str, name: str):
    """Metadata and description of the newest version; every file with its size, upload and
    uploader; install commands, also through the snapshot at the newest upload (which holds
    that file, and is in the past)."""
    row, role = channel_for(channel)
    detail = files.package_detail(get_db(), row["id"], kind, name)
    if detail is None:
        raise NotFound(f"Package '{name}' not found in channel '{channel}'")
    package, rows = detail
    versions = display.by_version(kind, rows)
    newest = versions[0][1][0]
    where = commands.Channel.at(request.host_url, channel)
    r_file = f"{package['name']}_{newest['version']}.tar.gz"
    metadata = json.loads(newest["metadata"])
    pinned = instant.label(datetime.fromisoformat(rows[0]["uploaded"]))
    install = functools.partial(commands.installs, kind=kind, package=package["display_name"],
                                public=bool(row["public"]))  # fmt: skip
    return render_template(
        "ui/package.html", channel=row, role=role, package=package, versions=versions,
        newest=newest, metadata=metadata, description=_description(kind, metadata, versions),
        installs=install(where), pinned=pinned, pinned_installs=install(where.as_of(pinned)),
        uploads=commands.uploads(where, kind, r_file=r_file),
    )  # fmt: skip


def _description(kind: str, metadata: dict, versions: list) -> Markup | str | None:
    """The newest version's long description: a Python project's rendered as PyPI does, an R
    package's DESCRIPTION field as plain text."""
    if kind == "cran":
        return metadata.get("Description")
    return readme.description(current_app.extensions["blobs"], versions[0][1])


def _owned_file(channel: str, file_id: int):
    """The channel (which the user must own) and the file in it, with its package's name."""
    row, _ = channel_for(channel, "owner")
    return row, files.file_in_channel(get_db(), row["id"], file_id)


def _package_page(channel: str, file) -> str:
    return url_for(".show", channel=channel, kind=file["kind"], name=file["package"])


@bp.post("/files/<int:file_id>/yanked")
@login_required
def set_yanked(channel: str, file_id: int):
    """Yank (`yanked=1`, with a reason pip shows) or unyank (`yanked=0`) a file (PEP 592)."""
    row, file = _owned_file(channel, file_id)
    yanked = request.form.get("yanked") == "1"
    files.set_yanked_by_id(get_db(), row["id"], file_id, yanked, request.form.get("reason"),
                           g.user.user_id)  # fmt: skip
    flash(f"{'Yanked' if yanked else 'Unyanked'} {file['filename']}", "ok")
    return redirect(_package_page(channel, file), 303)


@bp.post("/files/<int:file_id>/delete")
@login_required
def delete(channel: str, file_id: int):
    """Delete a file; the package goes with its last file."""
    row, file = _owned_file(channel, file_id)
    left = files.delete_file(get_db(), row["id"], file_id, g.user.user_id)
    flash(f"Deleted {file['filename']}", "ok")
    back = _package_page(channel, file) if left else url_for("ui.channels.show", channel=channel)
    return redirect(back, 303)
