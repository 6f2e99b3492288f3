"""A CRAN-like upstream's indexes asked for and stored as rows (mirror.md R27-R29): each
contrib directory's `PACKAGES.gz` (or `PACKAGES`), and src/contrib's `Meta/archive.rds`.

An index is fetched when first asked for and then again after its TTL (the mirror's; a day for
archive.rds), conditionally (R1, R28), once however many requests and workers want it (R13).
A PACKAGES' records become mirror_files rows, every field kept in `fields` as read.dcf read
it; each is checked to name a file of its own tree by the names R would use. archive.rds is
read with repo.cran.rds into rows of archived versions, not listed. Every change takes the
mirror's next serial, which names the channel's next index set (repo.cran.cache).
"""

from __future__ import annotations

import bz2
import json
import logging
import lzma
import re
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import httpx

from ..cran import cache, paths, rds
from ..cran.description import parse_dcf
from ..db import Connection, Row, now, transaction
from ..errors import Invalid
from ..snapshots import history
from . import lease
from .upstream import (
    GONE,
    PAGE_TIMEOUT,
    STALE_TIMEOUT,
    Upstream,
    UpstreamDown,
    conditional,
    read_limited,
)

log = logging.getLogger("repo.mirror")

SOURCE = paths.SOURCE_DIR
ARCHIVE_KEY = f"{SOURCE}/{paths.ARCHIVE_INDEX}"
# pkgcache refreshes archive.rds weekly; CRAN moves a version into Archive/ at most daily.
ARCHIVE_TTL = 24 * 3600
INDEX_SOURCES = ("PACKAGES.gz", "PACKAGES")  # pkgcache's order (cran.md §3.3)
# CRAN's PACKAGES is some 12 MB, its archive.rds some 40 MB unpacked: room to grow, and a
# bound on what a hostile upstream can make us hold.
UNPACKED_LIMIT = 256 * 1024 * 1024
_PATH_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_RECORDS = re.compile(rb"\r?\n(?:[ \t]*\r?\n)+")


class Unusable(Exception):
    """Upstream answered, but not with an index we can use (a login page, an odd status)."""


def freshen_index(upstream: Upstream, subdir: str) -> None:
    """Make our copy of `subdir`'s PACKAGES at most the mirror's TTL old (R28). Raises
    UpstreamDown, Refused or Unusable when it could not be had (our copy, if any, stays)."""
    _fresh(upstream, subdir, upstream.mirror.ttl, _fetch_index)


def freshen_archive(upstream: Upstream) -> None:
    """Make our copy of src/contrib/Meta/archive.rds at most ARCHIVE_TTL old (R29); raises
    as freshen_index."""
    _fresh(upstream, ARCHIVE_KEY, ARCHIVE_TTL, _fetch_archive)


def has_copy(db: Connection, mirror_id: int, key: str) -> bool:
    """Whether upstream was ever asked for `key` and answered (a copy to fall back on, R6)."""
    return _page(db, mirror_id, key) is not None


def _fresh(upstream: Upstream, key: str, ttl: float,
           fetch_page: Callable[[Upstream, str, Row | None], None]) -> None:  # fmt: skip
    """Make our copy of `key` at most `ttl` old, asking upstream once however many requests
    and workers want it (R13): the others wait for the one that asks, at most 2 s when there
    is a copy to fall back on (R3). Raises what the fetch raised, or UpstreamDown when the
    one that asked did not get an answer in time."""
    db, mirror = upstream.db, upstream.mirror
    name = f"page:{mirror.id}:{key}"
    page = _page(db, mirror.id, key)
    if _is_fresh(upstream, page, ttl):
        return
    if not lease.take(db, name):
        freed = lease.wait(db, name, time.time() + (STALE_TIMEOUT if page else PAGE_TIMEOUT))
        page = _page(db, mirror.id, key)
        if _is_fresh(upstream, page, ttl):
            return
        # Without a copy, and the one that asked failed: one try of our own.
        if not freed or page is not None or not lease.take(db, name):
            raise UpstreamDown(f"Upstream {mirror.source} did not send {key} in time", 1)
    try:
        fetch_page(upstream, key, page)
    except Unusable as error:
        log.warning("upstream %s: %s", mirror.source, error)
        if page is not None:  # keep our copy a TTL more rather than ask on every request
            _checked(upstream, key)
        raise
    finally:
        lease.release(db, name)


def _is_fresh(upstream: Upstream, page: Row | None, ttl: float) -> bool:
    return page is not None and upstream.clock() - page["checked"] < ttl


def _page(db: Connection, mirror_id: int, key: str) -> Row | None:
    return db.execute(
        "SELECT * FROM mirror_pages WHERE mirror_id = ? AND key = ?", (mirror_id, key)
    ).fetchone()


def _fetch_index(upstream: Upstream, subdir: str, page: Row | None) -> None:
    """One conditional GET of the directory's PACKAGES.gz, else PACKAGES; 304 resets the
    clock without a write to the rows (R1), 404 for both is an empty directory (R28)."""
    for name in INDEX_SOURCES:
        with upstream.get(f"{subdir}/{name}", conditional(page),
                          STALE_TIMEOUT if page else PAGE_TIMEOUT) as response:  # fmt: skip
            if response.status_code in GONE:
                continue
            if response.status_code == 304 and page is not None:
                _checked(upstream, subdir)
                return
            data = _body(response, f"{subdir}/{name}")
            validators = response.headers.get("etag"), response.headers.get("last-modified")
        _store_index(upstream, subdir, _records(data, subdir), *validators)
        return
    _store_index(upstream, subdir, None, None, None)


def _fetch_archive(upstream: Upstream, key: str, page: Row | None) -> None:
    """Meta/archive.rds, read into rows of archived versions (R29); 404: an upstream without
    one, whose archived versions are the ones its PACKAGES stopped listing."""
    with upstream.get(key, conditional(page), STALE_TIMEOUT if page else PAGE_TIMEOUT) as response:
        if response.status_code == 304 and page is not None:
            _checked(upstream, key)
            return
        gone = response.status_code in GONE
        data = b"" if gone else _body(response, key)
        validators = response.headers.get("etag"), response.headers.get("last-modified")
    try:
        archived = [] if gone else [(*row[:4], _stamp(row.mtime))
                                    for row in rds.read_archive_index(data)]  # fmt: skip
    except ValueError as error:
        raise Unusable(f"{key} from upstream is not an R archive index: {error}") from None
    moment = now()
    with transaction(upstream.db):
        added = upstream.db.executemany(
            "INSERT INTO mirror_files (mirror_id, project, subdir, filename, version, url, size,"
            " upload_time, listed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT DO NOTHING",
            [(upstream.mirror.id, package, SOURCE, filename, version,
              f"{SOURCE}/Archive/{package}/{filename}", size, uploaded or moment)
             for package, filename, version, size, uploaded in archived],
        ).rowcount  # fmt: skip
        _save_page(upstream, key, "missing" if gone else "found", *validators, added > 0)


def _stamp(epoch: float | None) -> str | None:
    """Epoch seconds as the database keeps times (repo.db.now); None when unknown, and
    ValueError when out of range (an infinite or absurd mtime from a hostile upstream)."""
    if epoch is None:
        return None
    try:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (OverflowError, OSError) as error:
        raise ValueError(f"a file time out of range ({epoch})") from error


def _body(response: httpx.Response, what: str) -> bytes:
    """The whole answer, unpacked whatever it was packed with (gzip, bzip2, xz, none: R's
    gzfile() reads them all), at most UNPACKED_LIMIT bytes."""
    if response.status_code != 200:
        raise Unusable(f"HTTP {response.status_code} from upstream for {what}")
    data = read_limited(response, UNPACKED_LIMIT, what)
    if data is None:
        raise Unusable(f"{what} from upstream is larger than {UNPACKED_LIMIT} bytes")
    for magic, unpacker in _UNPACKERS.items():
        if data.startswith(magic):
            unpacking = unpacker()
            try:
                data = unpacking.decompress(data, UNPACKED_LIMIT + 1)
            except (OSError, EOFError, zlib.error, lzma.LZMAError) as error:
                raise Unusable(f"{what} from upstream does not unpack: {error}") from None
            if not unpacking.eof or len(data) > UNPACKED_LIMIT:
                raise Unusable(f"{what} from upstream is truncated or too large unpacked")
    return data


_UNPACKERS: dict[bytes, Callable[[], Any]] = {
    b"\x1f\x8b": lambda: zlib.decompressobj(zlib.MAX_WBITS | 16),
    b"BZh": bz2.BZ2Decompressor,
    b"\xfd7zXZ\x00": lzma.LZMADecompressor,
}


class _Record(NamedTuple):
    project: str
    version: str
    filename: str
    url: str
    md5: str | None
    fields: str  # JSON, in upstream's order


def _records(data: bytes, subdir: str) -> list[_Record]:
    """The records of an upstream PACKAGES, each checked so that it names a file in `subdir`
    (or its Path below it) by the names R would use; a record that is not is left out."""
    records, skipped = [], 0
    for chunk in _RECORDS.split(data):
        if not chunk.strip():
            continue
        try:
            records.append(_record(parse_dcf(chunk), subdir))
        except Invalid:
            skipped += 1
    if skipped and not records:
        raise Unusable(f"{subdir}/PACKAGES from upstream is not a PACKAGES file")
    if skipped:
        log.warning("%d malformed records left out of upstream %s/PACKAGES", skipped, subdir)
    return records


def _record(fields: dict[str, str], subdir: str) -> _Record:
    package, version = fields.get("Package", ""), fields.get("Version", "")
    if not (rds.PACKAGE_PATTERN.fullmatch(package) and rds.VERSION_PATTERN.fullmatch(version)):
        raise Invalid("a record without a valid Package and Version")
    filename = fields.get("File") or cache.default_filename(package, version, subdir)
    wanted = paths.parse(f"{subdir}/{filename}")
    parts = fields.get("Path", "").split("/") if fields.get("Path") else []
    if wanted is None or wanted.file != filename or not all(map(_PATH_PART.fullmatch, parts)):
        raise Invalid(f"a record of {package} names no file of its tree")
    url = "/".join([subdir, *parts, filename])
    return _Record(package, version, filename, url, fields.get("MD5sum"), json.dumps(fields))


def _store_index(upstream: Upstream, subdir: str, records: list[_Record] | None,
                 etag: str | None, last_modified: str | None) -> None:  # fmt: skip
    """Store what upstream lists in `subdir` (None: no index there), writing only rows that
    changed; a row no longer listed stays, with its blob, for Archive/ and old pins (R29). A
    file whose MD5sum changed is fetched again."""
    db, mirror_id = upstream.db, upstream.mirror.id
    with transaction(db):
        old = {row["filename"]: row for row in db.execute(
            "SELECT id, filename, project, version, url, md5, fields, listed FROM mirror_files"
            " WHERE mirror_id = ? AND subdir = ?", (mirror_id, subdir))}  # fmt: skip
        new = {record.filename: record for record in records or []}
        changed = [record for record in new.values() if _differs(old.get(record.filename), record)]
        db.executemany(
            "INSERT INTO mirror_files (mirror_id, project, subdir, filename, version, url, md5,"
            " fields, listed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)"
            " ON CONFLICT (mirror_id, subdir, filename) DO UPDATE SET"
            " project = excluded.project, version = excluded.version, url = excluded.url,"
            " fields = excluded.fields, listed = 1,"
            " blob_sha256 = CASE WHEN mirror_files.md5 IS NOT DISTINCT FROM excluded.md5"
            " THEN mirror_files.blob_sha256 END,"
            " fetched = CASE WHEN mirror_files.md5 IS NOT DISTINCT FROM excluded.md5"
            " THEN mirror_files.fetched END, md5 = excluded.md5",
            [(mirror_id, r.project, subdir, r.filename, r.version, r.url, r.md5, r.fields)
             for r in changed],
        )  # fmt: skip
        dropped = [row for name, row in old.items() if row["listed"] and name not in new]
        moment = now()
        db.executemany(
            "UPDATE mirror_files SET listed = 0, url = ?, upload_time = coalesce(upload_time, ?)"
            " WHERE id = ?",
            [(f"{SOURCE}/Archive/{row['project']}/{row['filename']}" if subdir == SOURCE
              else row["url"], moment, row["id"]) for row in dropped],
        )  # fmt: skip
        if changed or dropped:
            history.record_listings(db, mirror_id, subdir, moment)
        state = "missing" if records is None else "found"
        _save_page(upstream, subdir, state, etag, last_modified, bool(changed or dropped))


def _differs(row: Row | None, record: _Record) -> bool:
    return row is None or not row["listed"] or (
        row["project"], row["version"], row["url"], row["md5"], row["fields"]
    ) != record[:2] + record[3:]  # fmt: skip


def _save_page(upstream: Upstream, key: str, state: str, etag: str | None,
               last_modified: str | None, changed: bool) -> None:  # fmt: skip
    """The page's new validators and check time; a change takes the mirror's next serial,
    which names the channel's next index set (repo.cran.cache). Inside the caller's
    transaction, so rows and serial change together."""
    db, mirror_id = upstream.db, upstream.mirror.id
    serial = db.execute(
        "SELECT coalesce(max(serial), 0) + 1 FROM mirror_pages WHERE mirror_id = ?", (mirror_id,)
    ).fetchone()[0]
    db.execute(
        "INSERT INTO mirror_pages (mirror_id, key, state, etag, last_modified, serial, checked,"
        " changed) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (mirror_id, key) DO UPDATE SET"
        " state = excluded.state, etag = excluded.etag, last_modified = excluded.last_modified,"
        " checked = excluded.checked,"
        " serial = CASE WHEN ? = 1 THEN excluded.serial ELSE mirror_pages.serial END,"
        " changed = CASE WHEN ? = 1 THEN excluded.changed ELSE mirror_pages.changed END",
        (mirror_id, key, state, etag, last_modified, serial if changed else 0, upstream.clock(),
         now(), int(changed), int(changed)),
    )  # fmt: skip


def _checked(upstream: Upstream, key: str) -> None:
    with transaction(upstream.db):
        upstream.db.execute(
            "UPDATE mirror_pages SET checked = ? WHERE mirror_id = ? AND key = ?",
            (upstream.clock(), upstream.mirror.id, key),
        )
