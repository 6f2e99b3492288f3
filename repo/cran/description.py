"""Check an uploaded R package archive, read its DESCRIPTION, and say where it is served.

Pure: no Flask, no database. Everything wrong with a client's file becomes `Invalid` (400),
never another exception: the archive is hostile input until its DESCRIPTION has been read.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, BinaryIO

from ..archives import DIRECTORY, FILE, BoundedStream, MemberCheck, tar_kind, zip_kind
from ..errors import Invalid

SOURCE = "cran_source_package"
BINARY = "cran_binary_package"

DESCRIPTION_CAP = 256 * 1024
MAX_MEMBERS = 100_000
RATIO_LIMIT = 100
BUDGET_FLOOR = 50 * 1024 * 1024  # below this much unpacked data a high ratio is harmless
# tarfile reads a pax or GNU long-name header whole, whatever size it claims
HEADER_CAP = 1024 * 1024

_MAGIC = (
    (b"PK\x03\x04", "zip"),
    (b"\x1f\x8b", "tar.gz"),
    (b"\xfd7zXZ\x00", "tar.xz"),
    (b"BZh", "tar.bz2"),
)
_DECOMPRESSORS: dict[str, Callable[[BinaryIO], Any]] = {
    "tar.gz": lambda f: gzip.GzipFile(fileobj=f, mode="rb"),
    "tar.xz": lzma.LZMAFile,
    "tar.bz2": bz2.BZ2File,
    "tar": lambda f: f,
}
# What broken archives raise from tarfile, zipfile and the decompressors.
_BROKEN = (
    tarfile.TarError,
    zipfile.BadZipFile,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    OSError,  # gzip.BadGzipFile, bz2's "Invalid data stream"
    ValueError,  # a zip entry name flagged UTF-8 that is not
    NotImplementedError,  # zipfile on compression methods it lacks
)
# (name, kind (archives.FILE, ...), link target, size, read it): one member of either archive kind
_Entry = tuple[str, str, str, int, Callable[[], bytes]]
# base:::.standard_regexps(), ASCII only (R-exts 1.1.1)
_PACKAGE = re.compile(r"[A-Za-z][A-Za-z0-9.]*[A-Za-z0-9]")
_VERSION = re.compile(r"[0-9]+([.-][0-9]+)+")
_FIELD = re.compile(rb"([A-Za-z0-9@._/-]+):(.*)")
# tools:::.install_package_description. Two-digit minors, as drat's \d broke on R 4.10; no
# longer ones, as the minor names a directory (bin/windows/contrib/4.10).
_BUILT = re.compile(r"R(?: ((\d{1,2})\.(\d{1,2})\.\d{1,3}))?; *([^;\s]*) *;[^;]*; *(unix|windows)")
# R-exts: latin1 and UTF-8 are the portable values of Encoding (keys lower-case, no "-").
_CODECS = {"latin1": "latin-1", "iso88591": "latin-1", "utf8": "utf-8"}
# R.version$platform of CRAN's mac builds -> the build dir of contrib.url (pkgcache's table).
_MAC_PLATFORMS = {
    "x86_64-apple-darwin17.0": "macosx",
    "x86_64-apple-darwin20": "big-sur-x86_64",
    "aarch64-apple-darwin20": "big-sur-arm64",
    "aarch64-apple-darwin23": "sonoma-arm64",
}
_MAC_BUILDS = frozenset(_MAC_PLATFORMS.values())
# R 4.6 linux.binary.<build>, noble-x86_64; both name a directory, so they are short.
_LINUX_BUILD = re.compile(r"[a-z0-9]+-[a-z0-9_]+")
LINUX_BUILD_MAX = 40
_RVERSION = re.compile(r"(\d{1,2})\.(\d{1,2})(?:\.\d{1,3})?")


@dataclass(frozen=True)
class Built:
    """The `Built` field of a binary: which R, platform and OS it was installed for."""

    r_version: str
    r_minor: str
    platform: str
    ostype: str


@dataclass(frozen=True)
class RPackage:
    """What the server keeps from one uploaded R package archive."""

    package: str
    version: str
    fields: dict[str, str]
    container: str
    needs_compilation: bool
    built: Built | None


def parse_dcf(data: bytes) -> dict[str, str]:
    """One DESCRIPTION record, read as read.dcf reads it (R's ?read.dcf); raises Invalid."""
    raw: dict[bytes, list[bytes]] = {}
    current: list[bytes] | None = None
    ended = False
    for number, line in enumerate(data.split(b"\n"), 1):
        line = line.removesuffix(b"\r")
        if not line.strip():
            ended = bool(raw)
        elif line[:1] in b" \t" and current is not None and not ended:
            current.append(b"" if line.strip() == b"." else line.strip())
        elif (match := _FIELD.fullmatch(line)) is None:
            raise Invalid(f"Invalid DESCRIPTION: line {number} is malformed")
        elif ended:
            raise Invalid("Invalid DESCRIPTION: more than one record")
        else:
            current = raw[match[1]] = [match[2].strip()]  # a duplicate field: the last wins
    encoding = b"\n".join(raw.get(b"Encoding", [b""])).decode("ascii", "replace")
    codec = _CODECS.get(encoding.lower().replace("-", ""))
    try:
        return {k.decode(): b"\n".join(v).decode(codec or "utf-8") for k, v in raw.items()}
    except UnicodeDecodeError:
        if codec:  # only UTF-8 can fail
            raise Invalid("Invalid DESCRIPTION: not valid UTF-8 (Encoding: UTF-8)") from None
        if encoding:
            shown = _shown(encoding)
            raise Invalid(f"Invalid DESCRIPTION: Encoding '{shown}' is not supported") from None
        raise Invalid("Invalid DESCRIPTION: not UTF-8 and no Encoding field") from None


def read_package(path: str, filetype: str) -> RPackage:
    """Check the uploaded archive at `path` and read its DESCRIPTION; raises Invalid."""
    # Opened outside the try: a missing temp file is our bug (500), not the client's.
    with open(path, "rb") as f:
        container = _container(f)
        try:
            entries = _zip_entries(f) if container == "zip" else _tar_entries(f, container)
            top, data, has_src = _scan(entries, links=container != "zip")
        except EOFError:
            raise _broken("archive is truncated") from None
        except _BROKEN:
            raise _broken(f"not a valid {container} archive") from None
    fields = parse_dcf(data)
    package = _required(fields, "Package", _PACKAGE)
    version = _required(fields, "Version", _VERSION)
    if top != package:
        raise _broken(f"top directory '{_shown(top)}' is not the package name '{package}'")
    if filetype == SOURCE and "Built" in fields:
        raise _broken(f"this is a binary package (it has a Built field); upload it as {BINARY}")
    if filetype == BINARY and "Built" not in fields:
        raise _broken(f"not a binary package (no Built field); upload it as {SOURCE}")
    needs = fields.get("NeedsCompilation")
    compiled = has_src if needs is None else needs == "yes"
    built = _built(fields["Built"]) if filetype == BINARY else None
    return RPackage(package, version, fields, container, compiled, built)


def version_key(version: str) -> tuple[int, ...]:
    """R's package_version ordering of a valid Version: 1.10 > 1.9, 0.01 == 0.1, 1-2 == 1.2."""
    return tuple(int(part) for part in re.split(r"[.-]", version))


def placement(
    pkg: RPackage, filetype: str, rversion: str | None, platform: str | None
) -> tuple[str, str]:
    """(subdir, filename) where the file is served inside the channel's cran/ tree; raises Invalid.

    `rversion` and `platform` are the optional upload form fields for what `Built` cannot say.
    """
    stem = f"{pkg.package}_{pkg.version}"
    if filetype == SOURCE:
        if pkg.container == "zip":
            raise Invalid("A source package must be a tar archive (R CMD build), not a zip")
        return "src/contrib", f"{stem}.{pkg.container}"
    built = pkg.built
    if built is None:
        raise _broken(f"not a binary package (no Built field); upload it as {SOURCE}")
    minor = _minor(built, rversion or None)
    if pkg.container == "zip":
        if built.ostype != "windows":
            raise Invalid("A zip binary must be built for Windows (Built ends in unix)")
        return f"bin/windows/contrib/{minor}", f"{stem}.zip"
    if built.ostype == "windows":
        raise Invalid("A Windows binary must be a zip archive")
    build = _build(built.platform, platform or None)
    if build in _MAC_BUILDS:
        if pkg.container != "tar.gz":
            raise Invalid("A macOS binary must be a gzip-compressed tar (.tgz)")
        prefix = "bin/macosx" if build == "macosx" else f"bin/macosx/{build}"
        return f"{prefix}/contrib/{minor}", f"{stem}.tgz"
    # R CMD INSTALL --build names Linux binaries <pkg>_<ver>_R_<platform>.tar.gz (spec 3.4).
    system = re.sub(r"[^A-Za-z0-9._-]", "_", built.platform or build)
    return f"bin/linux/{build}/contrib/{minor}", f"{stem}_R_{system}.{pkg.container}"


def _minor(built: Built, rversion: str | None) -> str:
    """The R major.minor a binary is for: from Built, or the form field `rversion` if it agrees."""
    if rversion is None:
        if not built.r_minor:
            raise Invalid("Built field has no R version: add the form field rversion (e.g. 4.4)")
        return built.r_minor
    if (match := _RVERSION.fullmatch(rversion)) is None:
        raise Invalid(f"Invalid rversion '{_shown(rversion)}': expected e.g. 4.4 or 4.4.1")
    minor = f"{int(match[1])}.{int(match[2])}"
    if built.r_minor and built.r_minor != minor:
        raise Invalid(f"rversion {minor} does not match the Built field's R {built.r_version}")
    return minor


def _build(built_platform: str, platform: str | None) -> str:
    """The mac build (macosx, big-sur-arm64, ...) or Linux build (noble-x86_64) of a tar binary."""
    implied = _MAC_PLATFORMS.get(built_platform)
    if platform is None:
        if implied:
            return implied
        if not built_platform:
            raise Invalid(
                "Built field has no platform: add the form field platform"
                " (e.g. big-sur-arm64 or noble-x86_64)"
            )
        if "linux" in built_platform:
            raise Invalid("A Linux binary needs the form field platform (e.g. noble-x86_64)")
        raise Invalid(f"Unknown Built platform '{_shown(built_platform)}'")
    build = _MAC_PLATFORMS.get(platform, platform)
    linux = len(build) <= LINUX_BUILD_MAX and _LINUX_BUILD.fullmatch(build)
    if build not in _MAC_BUILDS and not linux:
        raise Invalid(
            f"Unknown platform '{_shown(platform)}': expected macosx, big-sur-x86_64,"
            f" big-sur-arm64, sonoma-arm64 or a Linux build like noble-x86_64 (at most"
            f" {LINUX_BUILD_MAX} characters)"
        )
    linux_ok = build not in _MAC_BUILDS and "linux" in built_platform
    if built_platform and build != implied and not linux_ok:
        raise Invalid(
            f"platform '{_shown(platform)}' does not match the Built platform"
            f" '{_shown(built_platform)}'"
        )
    return build


def _container(f: BinaryIO) -> str:
    """The archive format from its magic bytes; the client's filename is never trusted."""
    head = f.read(6)
    f.seek(0)
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), "tar")


def _scan(entries: Iterator[_Entry], links: bool) -> tuple[str, bytes, bool]:
    """(top directory, DESCRIPTION bytes, has src/) after checking every member once: R's
    untar() and unzip() unpack them all, the skipped ones too. Symlinks only when `links`."""
    top, data, has_src = "", None, False
    check = MemberCheck(_broken, _shown, links)
    for count, (name, kind, target, size, read) in enumerate(entries, 1):
        if count > MAX_MEMBERS:
            raise _broken(f"more than {MAX_MEMBERS} members")
        check.check(name, kind, target)
        if (split := _split(name, top, kind == DIRECTORY)) is None:
            continue
        top, rest = split
        has_src = has_src or rest.partition("/")[0] == "src"
        if rest == "DESCRIPTION":  # a second one is the classic bypass: extraction keeps the last
            if data is not None:
                raise _broken("more than one DESCRIPTION")
            if kind != FILE:  # never follow a symlink or hard link
                raise _broken("DESCRIPTION is not a regular file")
            if size > DESCRIPTION_CAP:
                raise _broken("DESCRIPTION is larger than 256 KiB")
            data = read()
    if data is None:
        raise _broken("no DESCRIPTION in a single top-level directory")
    return top, data, has_src


def _tar_entries(f: BinaryIO, container: str) -> Iterator[_Entry]:
    """Every member of a tar, lazily, from a decompressed stream bounded against bombs."""
    budget = max(BUDGET_FLOOR, RATIO_LIMIT * os.fstat(f.fileno()).st_size)
    with _DECOMPRESSORS[container](f) as stream:
        try:
            tar = tarfile.open(fileobj=_bounded(stream, budget), mode="r:")
        except tarfile.ReadError:
            if container == "tar":
                raise _broken("not a tar or zip archive") from None
            raise
        with tar:
            for m in tar:
                yield m.name, tar_kind(m), m.linkname, m.size, partial(_extract, tar, m)


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    extracted = tar.extractfile(member)
    assert extracted is not None  # a regular file
    return extracted.read()


def _zip_entries(f: BinaryIO) -> Iterator[_Entry]:
    """Every entry of a zip's central directory, refusing what Windows R never writes."""
    with zipfile.ZipFile(f) as zf:
        seen: set[str] = set()
        for info in zf.infolist():
            if info.filename in seen:
                raise _broken(f"duplicate entry '{_shown(info.filename)}'")
            seen.add(info.filename)
            if info.flag_bits & 0x1:
                raise _broken(f"entry '{_shown(info.filename)}' is encrypted")
            # orig_filename: zipfile cuts `filename` at a NUL
            name = info.orig_filename.rstrip("/")
            yield name, zip_kind(info), "", info.file_size, partial(_unzip, zf, info)


def _unzip(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    with zf.open(info) as member:  # stops at the declared file_size
        return member.read(DESCRIPTION_CAP + 1)


def _split(name: str, top: str, is_dir: bool) -> tuple[str, str] | None:
    """(top directory, path below it) of a member MemberCheck passed, or None for one to skip;
    raises Invalid.

    One leading ./ is allowed (plain `tar czf x.tgz .`); macOS AppleDouble files are skipped.
    """
    parts = name.split("/")
    if parts[0] == "." and len(parts) > 1:
        parts = parts[1:]
    if (parts == ["."] and is_dir) or parts[0] == "__MACOSX" or parts[-1].startswith("._"):
        return None
    if parts[0] in ("", ".") or (top and parts[0] != top):
        raise _broken(f"member '{_shown(name)}' is outside the top directory")
    return parts[0], "/".join(parts[1:])


def _bounded(stream: BinaryIO, budget: int) -> BoundedStream:
    return BoundedStream(
        stream, budget, HEADER_CAP, _broken, f"unpacks to more than {budget} bytes"
    )


def _required(fields: dict[str, str], key: str, pattern: re.Pattern[str]) -> str:
    value = fields.get(key)
    if value is None:
        raise Invalid(f"Invalid DESCRIPTION: {key}: missing")
    if not pattern.fullmatch(value):
        raise Invalid(f"Invalid DESCRIPTION: {key}: invalid '{_shown(value)}'")
    return value


def _built(text: str) -> Built:
    """Parse `Built: R 4.2.2; x86_64-pc-linux-gnu; 2026-11-23 22:54:28 UTC; unix`."""
    match = _BUILT.fullmatch(text)
    if match is None:
        raise Invalid(f"Invalid DESCRIPTION: Built: malformed '{_shown(text)}'")
    version, major, minor, platform, ostype = match.groups()
    return Built(version or "", f"{major}.{minor}" if version else "", platform, ostype)


def _broken(reason: str) -> Invalid:
    return Invalid(f"Invalid R package: {reason}")


def _shown(text: str, limit: int = 100) -> str:
    """`text` as printable ASCII (escapes like repr), capped, for echoing in a message."""
    escaped = ascii(text)[1:-1]
    return escaped[: limit - 3] + "..." if len(escaped) > limit else escaped
