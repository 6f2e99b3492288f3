"""The R side's read URLs of a channel: `cran/` is a CRAN-like repository that
`install.packages(repos = ".../cran")` reads, under every prefix of the channel. A channel
that mirrors a CRAN-like upstream asks repo.mirror.cran for what it does not hold."""

from __future__ import annotations

import io
import json
from pathlib import Path

from flask import Blueprint, current_app, send_file

from .. import auth, files
from ..db import get_db
from ..errors import NotFound
from ..mirror import cran as mirror
from . import cache, paths

bp = Blueprint("cran", __name__)

KIND = "cran"
# Index files change with every upload; and no shared cache may keep a private channel's.
INDEX_CACHE = "private, no-cache"
# R sends no Accept-Encoding and libcurl would not decode: never Content-Encoding, only types.
TYPES = {".gz": "application/gzip", ".tgz": "application/gzip", ".zip": "application/zip",
         ".rds": "application/octet-stream", "": "text/plain; charset=utf-8"}  # fmt: skip


@bp.get("/<channel>/cran/<path:path>")
@auth.required.login_required
def repository(channel: str, path: str):
    """An index file (from the per-revision cache) or a package file (from the blob store,
    else from the channel's upstream; cached as blobs are, blobs.IMMUTABLE)."""
    target = auth.channel_for(channel, "read")
    wanted = paths.parse(path)
    if wanted is None:
        raise NotFound(f"Not a file of a CRAN-like repository: '{path}'")
    if wanted.index is not None:
        return _index(target["id"], wanted)
    return package_file(target, wanted, _package_file(target["id"], wanted))


def package_file(channel, wanted: paths.CranPath, row):
    """The file `wanted`: the channel's own (`row`, if it has it) from the blob store, else
    its upstream's."""
    if row is not None:
        return current_app.extensions["blobs"].send(row["sha256"], file_type(wanted.file),
                                                     wanted.file)  # fmt: skip
    mirrored = mirror.package_file(current_app, get_db(), channel["id"], wanted,
                                   file_type(wanted.file))  # fmt: skip
    if mirrored is None:
        raise NotFound(f"File '{wanted.file}' not found in channel '{channel['name']}'")
    return mirrored


def _index(channel_id: int, wanted: paths.CranPath):
    db = get_db()
    assert wanted.index is not None
    upstream = mirror.contrib(current_app, db, channel_id, wanted.subdir, wanted.index)
    root = cache.root(current_app.config["DATA_DIR"])
    location, etag = cache.index_file(db, root, channel_id, wanted.subdir, wanted.index,
                                      upstream)  # fmt: skip
    response = send_index(location, etag, INDEX_CACHE, wanted.index)
    if upstream is not None and upstream.stale:
        response.headers["X-Repo-Cache"] = mirror.STALE
    return response


def _package_file(channel_id: int, wanted: paths.CranPath):
    return in_place(files.find(get_db(), channel_id, KIND, wanted.subdir, wanted.file), wanted)


def in_place(row, wanted: paths.CranPath):
    """`row` if it is the file `wanted` names: an Archive/<pkg>/ path names its package too."""
    if row is None or wanted.archived_package is None:
        return row
    return row if json.loads(row["metadata"]).get("Package") == wanted.archived_package else None


def send_index(location: Path | bytes, etag: str, cache_control: str, name: str):
    """`location` (a file, or the bytes of an empty index) as the index file `name`."""
    if isinstance(location, bytes):
        location = io.BytesIO(location)
    response = send_file(location, mimetype=file_type(name), conditional=True, etag=etag,
                         max_age=None)  # fmt: skip
    response.headers["Cache-Control"] = cache_control
    return response


def file_type(name: str) -> str:
    return TYPES.get(Path(name).suffix, "application/octet-stream")
