"""twine's and uv's upload protocol ("legacy" API): validate everything, then publish.

The order is Warehouse's: check the form, verify every digest sent against what was hashed
while streaming, answer an identical re-upload 200 before reading the archive, read the core
metadata from the file itself (never trust the form), then publish: the row, with the blobs
renamed into place inside its transaction (files.publish).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import current_app
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from werkzeug.datastructures import MultiDict

from .. import files, session_upload
from ..accounts import Identity
from ..blobs import PendingBlob
from ..db import get_db
from ..errors import Gone, Invalid
from . import metadata

KIND = "pypi"
DIGESTS = {"sha256_digest": ("sha256", 64), "blake2_256_digest": ("blake2_256", 64),
           "md5_digest": ("md5", 32)}  # fmt: skip
# What twine's protocol sends once per upload; the core-metadata fields of multiple use
# (platform, classifiers, requires_dist, keywords, ...) come once per value.
SINGLE_FIELDS = (":action", "protocol_version", "filetype", "name", "version", "metadata_version",
                 "pyversion", *DIGESTS)  # fmt: skip
HEX = re.compile(r"[0-9a-fA-F]+")


def handle(channel, identity: Identity, form: MultiDict,
           uploaded: Callable[[str], tuple[PendingBlob, str] | None]) -> files.Stored:  # fmt: skip
    """Take one twine/uv upload to `channel`."""
    _check_action(form)
    part = uploaded("content")
    if part is None:
        raise Invalid("Upload payload does not have a file")
    pending, filename = part
    filetype = metadata.filetype_for(filename)
    if form.get("filetype", filetype) != filetype:
        raise Invalid(f"filetype '{form['filetype']}' does not match '{filename}'")
    _check_digests(form, pending)

    db = get_db()
    if files.existing(db, channel["id"], _describe(filename, pending)):
        return files.Stored(KIND, "", filename, created=False)

    pending.flush()
    dist = metadata.read_distribution(pending.path, filename)
    _check_form_matches(form, dist)
    with _content(pending, dist) as content:
        new = files.NewFile(
            kind=KIND, name=dist.normalized, display_name=dist.name, version=dist.version,
            filename=filename, sha256=pending.sha256, size=pending.size,
            requires_python=dist.requires_python,
            metadata_sha256=content[1].sha256 if len(content) > 1 else None,
            metadata=dist.fields,
        )  # fmt: skip
        created = files.publish(db, channel["id"], new, identity.user_id, content)
    return files.Stored(KIND, "", filename, created)


@contextmanager
def _content(pending: PendingBlob, dist: metadata.Distribution) -> Iterator[list[PendingBlob]]:
    """The blobs an upload publishes: the file, then its METADATA (PEP 658) if it is a wheel;
    what was not committed is dropped at the end."""
    if dist.metadata is None:
        yield [pending]
        return
    with current_app.extensions["blobs"].holding(dist.metadata) as extracted:
        yield [pending, extracted]


def _check_action(form: MultiDict) -> None:
    action = form.get(":action", "")
    if action in ("submit", "doc_upload"):
        raise Gone(f"Unsupported :action '{action}': upload distribution files instead")
    if action != "file_upload":
        raise Invalid(f"Unsupported :action '{action}'")
    if form.get("protocol_version", "1") != "1":
        raise Invalid("Unknown protocol version")


def _check_digests(form: MultiDict, pending: PendingBlob) -> None:
    sent = {field: form[field].strip() for field in DIGESTS if form.get(field, "").strip()}
    if not sent and not session_upload.by_session():
        raise Invalid("Include at least one message digest (sha256_digest)")
    computed = pending.digests()
    for field, value in sent.items():
        name, length = DIGESTS[field]
        if len(value) != length or not HEX.fullmatch(value):
            raise Invalid(f"Invalid {field}: use a hex-encoded {name} digest")
        if value.lower() != computed[name]:
            raise Invalid(
                "The digest supplied does not match a digest calculated from the uploaded file"
            )


def _describe(filename: str, pending: PendingBlob) -> files.NewFile:
    """Enough of a NewFile to ask whether its name is taken, before the archive is read."""
    return files.NewFile(KIND, "", "", "", filename, pending.sha256, pending.size)


def _check_form_matches(form: MultiDict, dist: metadata.Distribution) -> None:
    name = form.get("name", "").strip()
    if name and canonicalize_name(name) != dist.normalized:
        raise Invalid(f"Form field name '{name}' does not match file metadata '{dist.name}'")
    version = form.get("version", "").strip()
    if version:
        try:
            same = Version(version) == Version(dist.version)
        except InvalidVersion:
            same = False
        if not same:
            raise Invalid(
                f"Form field version '{version}' does not match file metadata '{dist.version}'"
            )
