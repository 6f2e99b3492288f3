"""Check an uploaded Python distribution (wheel or sdist) and read its core metadata.

Pure: no Flask, no database. Everything wrong with a client's file becomes `Invalid` (400),
never another exception, because twine re-sends the whole file five times after any 5xx.
"""

from __future__ import annotations

import gzip
import os
import re
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from packaging.metadata import parse_email
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidName,
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from ..archives import BoundedStream, MemberCheck, tar_kind, zip_kind
from ..errors import Invalid

WHEEL = "bdist_wheel"
SDIST = "sdist"

METADATA_CAP = 16 * 1024 * 1024  # METADATA and PKG-INFO carry the whole README
MAX_MEMBERS = 100_000
RATIO_LIMIT = 50  # Warehouse's COMPRESSION_RATIO_THRESHOLD
RATIO_FLOOR = 10 * 1024 * 1024  # below this much inflated data a high ratio is harmless
# Warehouse accepts 1.0-1.2 and 2.1-2.5; packaging 26.3 adds 2.6 (PEP 808). 2.0 was never a
# standard and twine refuses it.
METADATA_VERSIONS = frozenset({"1.0", "1.1", "1.2", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6"})
# What the UI shows; never the long description.
_SHOWN_FIELDS = (
    "metadata_version summary license license_expression author author_email home_page"
    " requires_dist classifiers description_content_type"
).split()
# Real distribution filenames are printable ASCII without spaces; anything else would only
# make trouble later in URLs, headers and reason phrases.
_FILENAME = re.compile(r"[!-~]+")
_TAGS = re.compile(r"[A-Za-z0-9_.-]+")
# What a broken archive raises from zipfile, gzip and tarfile (UnicodeDecodeError for a zip
# entry name flagged UTF-8 that is not).
_BROKEN = (
    zipfile.BadZipFile,
    tarfile.TarError,
    EOFError,
    zlib.error,
    OSError,
    ValueError,
    NotImplementedError,  # zipfile on features it lacks ("compressed patched data")
)


@dataclass(frozen=True)
class Distribution:
    """What the server keeps from one uploaded file; `metadata` is served as PEP 658 data."""

    filename: str
    name: str
    normalized: str
    version: str
    filetype: str
    requires_python: str | None
    metadata: bytes | None
    fields: dict[str, object]


def filetype_for(filename: str) -> str:
    """Validate an uploaded filename and say which kind of distribution it names. Raises Invalid."""

    def invalid(reason: str) -> Invalid:
        return Invalid(f"Invalid filename '{_shown(filename)}': {reason}")

    if not filename:
        raise invalid("empty")
    if "/" in filename or "\\" in filename:
        raise invalid("must not contain '/' or '\\'")
    if not _FILENAME.fullmatch(filename):
        raise invalid("only printable ASCII without spaces is allowed")
    if filename.startswith("."):
        raise invalid("must not start with '.'")
    if len(filename) > 255:
        raise invalid("longer than 255 bytes")
    if filename.endswith(".whl"):
        try:
            parse_wheel_filename(filename)
        except InvalidWheelFilename:
            raise invalid("expected name-version[-build]-python-abi-platform.whl") from None
        # packaging does not check the tags' characters; PEP 425 tags are letters, digits and
        # `_`, joined by `.` (and `<`, `'` in one would only make trouble in pages and logs).
        if not _TAGS.fullmatch(filename.removesuffix(".whl").split("-", 2)[2]):
            raise invalid("tags may hold only letters, digits, '_', '.' and '-'")
        return WHEEL
    if filename.endswith(".tar.gz"):
        try:
            parse_sdist_filename(filename)
        except InvalidSdistFilename:
            raise invalid("expected name-version.tar.gz") from None
        return SDIST
    # Warehouse stopped taking .zip sdists with PEP 625; so do we.
    raise Invalid("Invalid file extension: use .whl or .tar.gz")


def read_distribution(path: str, filename: str) -> Distribution:
    """Open the file at `path` (uploaded under `filename`), check it, and read its core metadata.

    Raises Invalid.
    """
    filetype = filetype_for(filename)
    # Opened outside the try: a missing temp file is our bug (500), not the client's.
    with open(path, "rb") as f:
        try:
            data = _wheel_metadata(f, filename) if filetype == WHEEL else _sdist_metadata(f)
        except EOFError:
            raise _broken("archive is truncated") from None
        except _BROKEN:
            kind = "zip" if filetype == WHEEL else "gzip-compressed tar"
            raise _broken(f"not a valid {kind} archive") from None
    return _distribution(filename, filetype, data)


def _wheel_metadata(f: BinaryIO, filename: str) -> bytes:
    """The byte-exact <name>-<ver>.dist-info/METADATA, after checking the zip's framing."""
    name, version, _, _ = parse_wheel_filename(filename)
    with zipfile.ZipFile(f) as zf:
        infos = zf.infolist()
        _check_zip(infos)
        tops = {i.filename.split("/", 1)[0] for i in infos if "/" in i.filename}
        dist_infos = sorted(top for top in tops if top.endswith(".dist-info"))
        if len(dist_infos) != 1:
            raise _broken(f"expected one .dist-info directory, found {len(dist_infos)}")
        dist_info = dist_infos[0]
        # pip's rule (utils/wheel.py): the directory's name and version match the filename's.
        dist_name, _, dist_version = dist_info.removesuffix(".dist-info").partition("-")
        if canonicalize_name(dist_name) != name or not _same_version(dist_version, version):
            raise _broken(f"'{_shown(dist_info)}' does not match the filename")
        entries = {i.filename: i for i in infos}
        for required in ("METADATA", "WHEEL"):  # Warehouse requires WHEEL too
            if f"{dist_info}/{required}" not in entries:
                raise _broken(f"no {_shown(dist_info)}/{required}")
        info = entries[f"{dist_info}/METADATA"]
        if info.file_size > METADATA_CAP:
            raise _broken("METADATA is larger than 16 MiB")
        with zf.open(info) as member:
            return member.read(METADATA_CAP + 1)  # zipfile stops at the declared file_size


def _check_zip(infos: list[zipfile.ZipInfo]) -> None:
    """Refuse zip bombs, the framing tricks Warehouse refuses, and entries unsafe to unpack:
    we never extract, but installers do."""
    if len(infos) > MAX_MEMBERS:
        raise _broken(f"more than {MAX_MEMBERS} entries")
    check = MemberCheck(_broken, _shown, links=False)  # no wheel needs a symlink
    seen: set[str] = set()
    for info in infos:
        check.check(info.orig_filename, zip_kind(info))  # zipfile cuts `filename` at a NUL
        if info.filename in seen:
            raise _broken(f"duplicate entry '{_shown(info.filename)}'")
        seen.add(info.filename)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _broken(f"entry '{_shown(info.filename)}' is not stored or deflated")
        if info.flag_bits & 0x1:
            raise _broken(f"entry '{_shown(info.filename)}' is encrypted")
    inflated = sum(i.file_size for i in infos)
    if inflated > RATIO_FLOOR and inflated > RATIO_LIMIT * sum(i.compress_size for i in infos):
        raise _broken(f"compression ratio exceeds {RATIO_LIMIT}")


def _sdist_metadata(f: BinaryIO) -> bytes:
    """The bytes of <root>/PKG-INFO, after checking every member: pip and tarfile unpack them."""
    budget = max(RATIO_FLOOR, RATIO_LIMIT * os.fstat(f.fileno()).st_size)
    check = MemberCheck(_broken, _shown)
    with (
        gzip.GzipFile(fileobj=f, mode="rb") as gz,
        tarfile.open(fileobj=_inflated(gz, budget), mode="r:") as tar,
    ):
        root, data = None, None
        for count, member in enumerate(tar, 1):
            if count > MAX_MEMBERS:
                raise _broken(f"more than {MAX_MEMBERS} members")
            check.check(member.name, tar_kind(member), member.linkname)
            top, _, rest = member.name.partition("/")
            root = root or top
            if top != root or top in ("", ".", ".."):
                raise _broken(f"member '{_shown(member.name)}' is outside the top directory")
            if rest == "PKG-INFO":
                data = _pkg_info(tar, member, data)
    if data is None:
        raise _broken("no PKG-INFO in a single top-level directory")
    return data


def _pkg_info(tar: tarfile.TarFile, member: tarfile.TarInfo, found: bytes | None) -> bytes:
    """The bytes of the PKG-INFO `member`; `found` is one read before: unpacking keeps the last."""
    if found is not None:
        raise _broken("more than one PKG-INFO")
    if not member.isfile():  # never follow a symlink or hard link
        raise _broken("PKG-INFO is not a regular file")
    if member.size > METADATA_CAP:
        raise _broken("PKG-INFO is larger than 16 MiB")
    extracted = tar.extractfile(member)
    assert extracted is not None  # isfile() above
    return extracted.read()


def _inflated(gz: gzip.GzipFile, budget: int) -> BoundedStream:
    return BoundedStream(gz, budget, 2 * METADATA_CAP, _broken,
                         f"compression ratio exceeds {RATIO_LIMIT}")  # fmt: skip


def _distribution(filename: str, filetype: str, data: bytes) -> Distribution:
    """Parse METADATA/PKG-INFO, validate what the server relies on, and match it to the filename."""
    try:
        raw, unparsed = parse_email(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise Invalid("Invalid metadata: not UTF-8") from None
    for key in ("metadata_version", "name", "version", "requires_python"):
        # parse_email moves repeated single-value fields here, under their header spelling.
        if key.replace("_", "-") in unparsed:
            raise Invalid(f"Invalid metadata: {key}: repeated or malformed")
    for key in ("metadata_version", "name", "version"):
        if key not in raw:
            raise Invalid(f"Invalid metadata: {key}: missing")
    if raw["metadata_version"] not in METADATA_VERSIONS:
        raise Invalid(
            f"Invalid metadata: metadata_version: unsupported '{_shown(raw['metadata_version'])}'"
        )
    name, raw_version = raw["name"], raw["version"]
    try:
        normalized = canonicalize_name(name, validate=True)
    except InvalidName:
        raise Invalid(f"Invalid metadata: name: invalid project name '{_shown(name)}'") from None
    try:
        version = Version(raw_version)
    except InvalidVersion:
        raise Invalid(f"Invalid metadata: version: invalid '{_shown(raw_version)}'") from None
    requires_python = raw.get("requires_python", "").strip() or None
    if requires_python is not None:
        try:
            SpecifierSet(requires_python)
        except InvalidSpecifier:
            shown = _shown(requires_python)
            raise Invalid(f"Invalid metadata: requires_python: invalid '{shown}'") from None
    if filetype == WHEEL:
        file_name, file_version, _, _ = parse_wheel_filename(filename)
    else:
        file_name, file_version = parse_sdist_filename(filename)
    if file_name != normalized or file_version != version:
        raise Invalid(
            f"Filename '{_shown(filename)}' does not match metadata name '{_shown(name)}'"
            f" version '{_shown(raw_version)}'"
        )
    values: dict[str, object] = dict(raw)
    fields = {key: values[key] for key in _SHOWN_FIELDS if values.get(key)}
    if urls := raw.get("project_urls"):
        fields["project_urls"] = [f"{label}, {url}" for label, url in urls.items()]
    return Distribution(
        filename=filename,
        name=name,
        normalized=normalized,
        version=str(version),
        filetype=filetype,
        requires_python=requires_python,
        metadata=data if filetype == WHEEL else None,
        fields=fields,
    )


def _same_version(text: str, version: Version) -> bool:
    try:
        return Version(text) == version
    except InvalidVersion:
        return False


def _broken(reason: str) -> Invalid:
    return Invalid(f"Invalid distribution file: {reason}")


def _shown(text: str, limit: int = 100) -> str:
    """`text` as printable ASCII (escapes like repr), capped, for echoing in a message."""
    escaped = ascii(text)[1:-1]
    return escaped[: limit - 3] + "..." if len(escaped) > limit else escaped
