"""The R side's read URLs of a channel: `cran/` is a CRAN-like repository that
`install.packages(repos = ".../cran")` reads, under every prefix of the channel."""

from __future__ import annotations

import io
import json
from pathlib import Path

from flask import Blueprint, current_app, send_file

from .. import auth, files
from ..db import get_db
from ..errors import NotFound
from . import cache, paths

bp = Blueprint("cran", __name__)

KIND = "cran"
FILE_CACHE = "private, max-age=31536000, immutable"
# Index files change with every upload; and no shared cache may keep a private channel's.
INDEX_CACHE = "private, no-cache"
# R sends no Accept-Encoding and libcurl would not decode: never Content-Encoding, only types.
TYPES = {".gz": "application/gzip", ".tgz": "application/gzip", ".zip": "application/zip",
         ".rds": "application/octet-stream", "": "text/plain; charset=utf-8"}  # fmt: skip


@bp.get("/<channel>/cran/<path:path>")
@auth.required.login_required
def repository(channel: str, path: str):
    """An index file (from the per-revision cache) or a package file (from the blobs)."""
    target = auth.channel_for(channel, "read")
    wanted = paths.parse(path)
    if wanted is None:
        raise NotFound(f"Not a file of a CRAN-like repository: '{path}'")
    if wanted.index is not None:
        root = cache.root(current_app.config["DATA_DIR"])
        location, etag = cache.index_file(get_db(), root, target["id"], wanted.subdir,
                                          wanted.index)  # fmt: skip
        if isinstance(location, bytes):
            return _send(io.BytesIO(location), etag, INDEX_CACHE, wanted.index)
        return _send(location, etag, INDEX_CACHE)
    row = _package_file(target["id"], wanted)
    if row is None:
        raise NotFound(f"File '{wanted.file}' not found in channel '{channel}'")
    blob = current_app.extensions["blobs"].path(row["sha256"])
    return _send(blob, row["sha256"], FILE_CACHE, wanted.file)


def _package_file(channel_id: int, wanted: paths.CranPath):
    row = files.find(get_db(), channel_id, KIND, wanted.subdir, wanted.file)
    if row is None or wanted.archived_package is None:
        return row
    return row if json.loads(row["metadata"]).get("Package") == wanted.archived_package else None


def _send(location: Path | io.BytesIO, etag: str, cache_control: str, name: str | None = None):
    """`location` (a file, or the bytes of an empty index) as the file `name`."""
    suffix = Path(name or location.name).suffix
    response = send_file(location, mimetype=TYPES.get(suffix, "application/octet-stream"),
                         conditional=True, etag=etag, max_age=None)  # fmt: skip
    response.headers["Cache-Control"] = cache_control
    return response
