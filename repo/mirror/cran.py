"""A channel's CRAN-like upstream: its indexes fetched, stored as rows and merged with the
channel's own packages; its files fetched on first request (mirror.md R27-R29).

Each contrib directory's `PACKAGES.gz` (or `PACKAGES`) is fetched when first asked for and
then again after the mirror's TTL, conditionally (R28); its records become mirror_files rows,
every field kept in `fields` as read.dcf read it. The channel serves PACKAGES, .gz and .rds
built from those rows and its own (repo.cran.cache) with repo.cran.index, that is exactly what
`tools::write_PACKAGES` writes for them: the standard fields in R's order, each upstream value
verbatim (OS_type, Priority, Archs, MD5sum, NeedsCompilation, License unstandardised), and
`File` where upstream had one. What write_PACKAGES never writes stays in the row only: other
fields, and `Path`, which instead decides the upstream URL of the file the row names, served
here at `<contrib>/<file>` like any other.

Private wins (R23, R27): the rows of a package the channel holds, or has reserved, are left
out of every tree, and its files are never fetched. `Meta/archive.rds` is merged (mirror.md
§9, decided): the upstream's is read (a small reader of R's serialization, below) into rows,
refreshed daily; the channel serves one archive.rds of the upstream's archived versions, the
versions upstream stopped listing, and the channel's own older versions, a private name's
only from the channel.

While the upstream is down (its circuit breaker open) the indexes list only the upstream
files held here (R8), so R picks versions it can install; without any copy an index answers
503 unless the channel has packages of its own there (R26).
"""

from __future__ import annotations

import bz2
import functools
import hashlib
import json
import logging
import lzma
import re
import sqlite3
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import httpx
from flask import Flask, Response

from ..cran import cache, index, paths
from ..cran.description import parse_dcf, version_key
from ..db import now, transaction
from ..errors import Invalid, RepoError
from . import fetch, lease, settings
from .settings import Mirror
from .upstream import PAGE_TIMEOUT, Refused, Upstream, UpstreamDown, client_for

log = logging.getLogger("repo.mirror")

KIND = "cran"
SOURCE = paths.SOURCE_DIR
ARCHIVE_KEY = f"{SOURCE}/{paths.ARCHIVE_INDEX}"
# pkgcache refreshes archive.rds weekly; CRAN moves a version into Archive/ at most daily.
ARCHIVE_TTL = 24 * 3600
# With a copy to fall back on, a client waits at most this long for upstream (R3).
STALE_WAIT = 2.0
INDEX_SOURCES = ("PACKAGES.gz", "PACKAGES")  # pkgcache's order (cran.md §3.3)
# CRAN's PACKAGES is some 12 MB, its archive.rds some 40 MB unpacked: room to grow, and a
# bound on what a hostile upstream can make us hold.
UNPACKED_LIMIT = 256 * 1024 * 1024
GONE = (404, 410)
# Binary trees as CRAN has them; R 4.6's bin/linux trees name builds without bound, so they
# list the channel's own binaries only.
MIRRORED_TREES = ("bin/windows/", "bin/macosx/")
STALE = "stale; upstream=down"  # X-Repo-Cache (R6)
# base:::.standard_regexps(): what a Package and a Version may be, so that no upstream
# record can name a file outside its tree.
_PACKAGE = re.compile(r"[A-Za-z][A-Za-z0-9.]*[A-Za-z0-9]")
_VERSION = re.compile(r"[0-9]+(?:[.-][0-9]+)+")
_PATH_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_RECORDS = re.compile(rb"\r?\n(?:[ \t]*\r?\n)+")


class Unusable(Exception):
    """Upstream answered, but not with an index we can use (a login page, an odd status)."""


@dataclass(frozen=True)
class Contrib:
    """A mirror's side of a channel's contrib directories, as repo.cran.cache.Mirrored."""

    mirror: Mirror
    held: bool  # the upstream is down: list only the files we hold (R8)
    stale: bool  # the upstream could not be asked: what is listed is our last copy (R6)

    def state(self, db: sqlite3.Connection) -> tuple[int, str]:
        """The serial of the mirror's stored indexes, and a tag of the mirror, its rules and
        the held flag: a new mirror of the same id, a reservation, an outage each make a new
        set."""
        serial = db.execute(
            "SELECT coalesce(max(serial), 0) FROM mirror_pages WHERE mirror_id = ?",
            (self.mirror.id,),
        ).fetchone()[0]
        created = db.execute(
            "SELECT created FROM mirrors WHERE id = ?", (self.mirror.id,)
        ).fetchone()[0]
        rules = settings.rules(db, self.mirror.channel_id, KIND)
        tag = json.dumps([self.mirror.id, created, rules, self.held])
        return serial, hashlib.sha256(tag.encode()).hexdigest()[:12]

    def entries(self, db: sqlite3.Connection, subdir: str) -> list[index.Entry]:
        """The upstream rows of `subdir` the channel shows: every field as upstream gave it,
        its File too (R27)."""
        shown = _shown(db, self.mirror.channel_id)
        listed = "blob_sha256 IS NOT NULL AND fields != '{}'" if self.held else "listed = 1"
        rows = db.execute(
            f"SELECT project, fields FROM mirror_files WHERE mirror_id = ? AND subdir = ?"
            f" AND {listed}",
            (self.mirror.id, subdir),
        )
        entries = []
        for row in rows:
            if shown(row["project"]):
                fields = json.loads(row["fields"])
                entries.append(index.Entry(fields, fields.get("File")))
        return entries

    def archived(self, db: sqlite3.Connection) -> dict[str, list[tuple[str, int, float]]]:
        """The upstream versions of src/contrib not listed in its PACKAGES: archive.rds's and
        the ones it stopped listing since, oldest first; while down, only those held."""
        shown = _shown(db, self.mirror.channel_id)
        held = " AND blob_sha256 IS NOT NULL" if self.held else ""
        rows = db.execute(
            "SELECT project, version, filename, size, upload_time FROM mirror_files"
            f" WHERE mirror_id = ? AND subdir = ? AND listed = 0{held}",
            (self.mirror.id, SOURCE),
        ).fetchall()
        archive: dict[str, list[tuple[str, int, float]]] = {}
        for row in sorted(rows, key=lambda r: (r["project"], version_key(r["version"]))):
            if shown(row["project"]):
                moment = datetime.fromisoformat(row["upload_time"]) if row["upload_time"] else None
                archive.setdefault(row["project"], []).append(
                    (f"{row['project']}/{row['filename']}", row["size"] or 0,
                     moment.timestamp() if moment else 0.0)
                )  # fmt: skip
        return archive


def contrib(app: Flask, db: sqlite3.Connection, channel_id: int, subdir: str,
            name: str) -> Contrib | None:  # fmt: skip
    """The mirror's part of one index file's answer, its upstream index made fresh first
    (R28); None when the channel mirrors no CRAN-like upstream there. Raises 503 when the
    upstream is down and nothing can be listed (R6)."""
    mirror = settings.find(db, channel_id, KIND)
    if mirror is None or not _mirrored(subdir):
        return None
    upstream = _upstream(app, db, mirror)
    try:
        _fresh(upstream, subdir, mirror.ttl, _fetch_index)
        stale = False
    except (UpstreamDown, Unusable, Refused) as error:
        if _page(db, mirror.id, subdir) is None and not _has_own(db, channel_id, subdir):
            raise _unavailable(error) from None
        stale = True
    if name == paths.ARCHIVE_INDEX and not stale:
        # Without a fresh archive.rds, the one of our last copy (logged by _fresh).
        with suppress(UpstreamDown, Unusable, Refused):
            _fresh(upstream, ARCHIVE_KEY, ARCHIVE_TTL, _fetch_archive)
    held = upstream.retry_after() > 0
    return Contrib(mirror, held, stale or held)


def package_file(app: Flask, db: sqlite3.Connection, channel_id: int, wanted: paths.CranPath,
                 mimetype: str) -> Response | None:  # fmt: skip
    """An upstream package file, fetched on first request through repo.mirror.fetch (MD5sum
    checked, one download however many ask); None when the channel mirrors nothing of that
    name: no mirror, a private or reserved name (R23), a file upstream never listed."""
    mirror = settings.find(db, channel_id, KIND)
    assert wanted.file is not None
    named = wanted.archived_package or wanted.file.split("_", 1)[0]
    if mirror is None or not _mirrored(wanted.subdir):
        return None
    if not settings.upstream_may_serve(db, channel_id, KIND, named):
        return None
    row = _file_row(db, mirror.id, wanted)
    if row is None:
        # Not in what we stored: a tree not asked for yet, or a version archived meanwhile.
        upstream = _upstream(app, db, mirror)
        try:
            _fresh(upstream, wanted.subdir, mirror.ttl, _fetch_index)
            if wanted.subdir == SOURCE and _file_row(db, mirror.id, wanted) is None:
                _fresh(upstream, ARCHIVE_KEY, ARCHIVE_TTL, _fetch_archive)
        except (UpstreamDown, Unusable, Refused) as error:
            raise _unavailable(error) from None
        row = _file_row(db, mirror.id, wanted)
    if row is None or not settings.upstream_may_serve(db, channel_id, KIND, row["project"]):
        return None
    return fetch.serve(app, db, mirror, row, mimetype, _fallbacks(row))


def _mirrored(subdir: str) -> bool:
    return subdir == SOURCE or subdir.startswith(MIRRORED_TREES)


def _upstream(app: Flask, db: sqlite3.Connection, mirror: Mirror) -> Upstream:
    # The clock is injectable so that TTL tests need not sleep (mirror.md R-T3).
    return Upstream(client_for(app), db, mirror, clock=app.config.get("CLOCK", time.time))


def _unavailable(error: Exception) -> RepoError:
    """503 with Retry-After and the upstream's trouble (R6); R shows only "cannot open URL",
    so the reason is in the log and the body for curl users."""
    if isinstance(error, UpstreamDown):
        return RepoError(f"Service Unavailable: {error.message}; nothing cached", 503,
                         {"Retry-After": str(max(1, error.retry_after))})  # fmt: skip
    return RepoError(f"Bad Gateway: {error}", 502)


def _page(db: sqlite3.Connection, mirror_id: int, key: str) -> sqlite3.Row | None:
    return db.execute(
        "SELECT * FROM mirror_pages WHERE mirror_id = ? AND key = ?", (mirror_id, key)
    ).fetchone()


def _has_own(db: sqlite3.Connection, channel_id: int, subdir: str) -> bool:
    """Whether the channel holds packages of its own in `subdir` (R26: always listed)."""
    return db.execute(
        "SELECT 1 FROM files WHERE channel_id = ? AND kind = ? AND subdir = ? AND yanked = 0",
        (channel_id, KIND, subdir),
    ).fetchone() is not None  # fmt: skip


def _shown(db: sqlite3.Connection, channel_id: int) -> Callable[[str], bool]:
    """Whether the upstream rows of a package may show in the channel (R23): asked of
    settings.upstream_may_serve only for the names it can refuse, as an index has thousands."""
    reserved = settings.rules(db, channel_id, KIND)["reserve"]
    private = {row[0] for row in db.execute(
        "SELECT name FROM packages WHERE channel_id = ? AND kind = ?", (channel_id, KIND)
    )}  # fmt: skip

    @functools.cache
    def shown(name: str) -> bool:
        if not reserved and name not in private:
            return True
        return settings.upstream_may_serve(db, channel_id, KIND, name)

    return shown


def _file_row(db: sqlite3.Connection, mirror_id: int, wanted: paths.CranPath):
    row = db.execute(
        "SELECT * FROM mirror_files WHERE mirror_id = ? AND subdir = ? AND filename = ?",
        (mirror_id, wanted.subdir, wanted.file),
    ).fetchone()
    if row is None or wanted.archived_package not in (None, row["project"]):
        return None
    return row


def _fallbacks(row: sqlite3.Row) -> list[str]:
    """Where else upstream may keep a source file: CRAN moves a version from src/contrib to
    Archive/<pkg>/ on a new release (R29), and the other way round for an archived row."""
    if row["subdir"] != SOURCE:
        return []
    places = [f"{SOURCE}/{row['filename']}", f"{SOURCE}/Archive/{row['project']}/{row['filename']}"]
    return [url for url in places if url != row["url"]]


# --- fetching an index ---------------------------------------------------------------------


def _fresh(upstream: Upstream, key: str, ttl: float,
           fetch_page: Callable[[Upstream, str, sqlite3.Row | None], None]) -> None:  # fmt: skip
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
        freed = lease.wait(db, name, time.time() + (STALE_WAIT if page else PAGE_TIMEOUT))
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


def _is_fresh(upstream: Upstream, page: sqlite3.Row | None, ttl: float) -> bool:
    return page is not None and upstream.clock() - page["checked"] < ttl


def _fetch_index(upstream: Upstream, subdir: str, page: sqlite3.Row | None) -> None:
    """One conditional GET of the directory's PACKAGES.gz, else PACKAGES; 304 resets the
    clock without a write to the rows (R1), 404 for both is an empty directory (R28)."""
    for name in INDEX_SOURCES:
        with upstream.get(f"{subdir}/{name}", _validators(page),
                          STALE_WAIT if page else PAGE_TIMEOUT) as response:  # fmt: skip
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


def _fetch_archive(upstream: Upstream, key: str, page: sqlite3.Row | None) -> None:
    """Meta/archive.rds, read into rows of archived versions (R29); 404: an upstream without
    one, whose archived versions are the ones its PACKAGES stopped listing."""
    with upstream.get(key, _validators(page), STALE_WAIT if page else PAGE_TIMEOUT) as response:
        if response.status_code == 304 and page is not None:
            _checked(upstream, key)
            return
        gone = response.status_code in GONE
        data = b"" if gone else _body(response, key)
        validators = response.headers.get("etag"), response.headers.get("last-modified")
    try:
        archived = [] if gone else list(_archived(data))
    except _MALFORMED as error:
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


def _validators(page: sqlite3.Row | None) -> dict[str, str]:
    """If-None-Match, else If-Modified-Since, from what upstream last sent (R1)."""
    if page is None or page["state"] != "found":
        return {}
    if page["etag"]:
        return {"If-None-Match": page["etag"]}
    return {"If-Modified-Since": page["last_modified"]} if page["last_modified"] else {}


def _body(response: httpx.Response, what: str) -> bytes:
    """The whole answer, unpacked whatever it was packed with (gzip, bzip2, xz, none: R's
    gzfile() reads them all), at most UNPACKED_LIMIT bytes."""
    if response.status_code != 200:
        raise Unusable(f"HTTP {response.status_code} from upstream for {what}")
    chunks, size = [], 0
    for chunk in response.iter_bytes():  # httpx undoes a Content-Encoding
        size += len(chunk)
        if size > UNPACKED_LIMIT:
            raise Unusable(f"{what} from upstream is larger than {UNPACKED_LIMIT} bytes")
        chunks.append(chunk)
    data = b"".join(chunks)
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
    if not (_PACKAGE.fullmatch(package) and _VERSION.fullmatch(version)):
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
            " blob_sha256 = iif(md5 IS excluded.md5, blob_sha256, NULL),"
            " fetched = iif(md5 IS excluded.md5, fetched, NULL), md5 = excluded.md5",
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
        state = "missing" if records is None else "found"
        _save_page(upstream, subdir, state, etag, last_modified, bool(changed or dropped))


def _differs(row: sqlite3.Row | None, record: _Record) -> bool:
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
        " checked = excluded.checked, serial = iif(?, excluded.serial, serial),"
        " changed = iif(?, excluded.changed, changed)",
        (mirror_id, key, state, etag, last_modified, serial if changed else 0, upstream.clock(),
         now(), changed, changed),
    )  # fmt: skip


def _checked(upstream: Upstream, key: str) -> None:
    with transaction(upstream.db):
        upstream.db.execute(
            "UPDATE mirror_pages SET checked = ? WHERE mirror_id = ? AND key = ?",
            (upstream.clock(), upstream.mirror.id, key),
        )


# --- reading Meta/archive.rds ---------------------------------------------------------------


# What reading a malformed or hostile serialization raises.
_MALFORMED = (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError,
              struct.error)  # fmt: skip


class _RObject(NamedTuple):
    values: list
    attributes: dict[str, Any]


class _Unserialize:
    """Just enough of R's unserialize() (R 4.2.2 src/main/serialize.c) for archive.rds: XDR
    format 2 or 3; vectors, pairlists and symbols (references to them too). ALTREP and
    closures are refused: no archive.rds R writes has them."""

    _SYMSXP, _LISTSXP, _CHARSXP, _REFSXP, _NILVALUE = 1, 2, 9, 255, 254
    _INTEGERS, _REALSXP, _STRSXP, _VECSXP = (10, 13), 14, 16, 19
    _LATIN1 = 4 << 12  # the gp bits of a CHARSXP marked latin1

    def __init__(self, data: bytes) -> None:
        if not data.startswith(b"X\n"):
            raise ValueError("not R's XDR serialization")
        self.data, self.at, self.symbols = data, 2, []
        format_version = self._ints(3)[0]
        if format_version == 3:
            (length,) = self._ints(1)
            self.at += length  # the writer's native encoding, by name
        elif format_version != 2:
            raise ValueError(f"serialization format {format_version}")

    def _ints(self, count: int, code: str = "i", size: int = 4) -> tuple:
        values = struct.unpack_from(f">{count}{code}", self.data, self.at)
        self.at += count * size
        return values

    def item(self) -> Any:
        (flags,) = self._ints(1)
        kind, has_attributes, has_tag = flags & 0xFF, flags & 0x200, flags & 0x400
        if kind == self._NILVALUE:
            return None
        if kind == self._REFSXP:
            return self.symbols[(flags >> 8 or self._ints(1)[0]) - 1]
        if kind == self._SYMSXP:
            self.symbols.append(self.item())
            return self.symbols[-1]
        if kind == self._LISTSXP:  # a pairlist: [(tag, value), ...]
            if has_attributes:
                self.item()
            tag = self.item() if has_tag else None
            value = self.item()
            return [(tag, value), *(self.item() or [])]
        if kind == self._CHARSXP:
            (length,) = self._ints(1)
            if length == -1:
                return None  # NA_character_
            text = self.data[self.at : self.at + length]
            if len(text) != length:
                raise ValueError("a string longer than the data")
            self.at += length
            return text.decode("latin-1" if flags & self._LATIN1 else "utf-8")
        return self._vector(kind, has_attributes)

    def _vector(self, kind: int, has_attributes: int) -> _RObject:
        (length,) = self._ints(1)
        if kind in self._INTEGERS:
            values = list(self._ints(length))
        elif kind == self._REALSXP:
            values = list(self._ints(length, "d", 8))
        elif kind in (self._STRSXP, self._VECSXP):
            values = [self.item() for _ in range(length)]
        else:
            raise ValueError(f"an R object of type {kind}")
        return _RObject(values, dict(self.item()) if has_attributes else {})


def _archived(data: bytes) -> Iterator[tuple[str, str, str, int | None, str | None]]:
    """(package, file, version, size, mtime) of each row of an archive.rds: a named list of
    file.info() data frames whose row names are "<pkg>/<file>" (cran.md §4.4); a row that
    names no source archive of its package is left out."""
    top = _Unserialize(data).item()
    for package, frame in zip(top.attributes["names"].values, top.values, strict=True):
        if not (_PACKAGE.fullmatch(package or "") and isinstance(frame, _RObject)):
            continue
        rows = frame.attributes.get("row.names")
        if rows is None or not all(isinstance(name, str) for name in rows.values):
            continue  # R's compact form c(NA, -n): no file names
        columns = dict(zip(frame.attributes["names"].values, frame.values, strict=True))
        unknown = _RObject([None] * len(rows.values), {})
        sizes, mtimes = columns.get("size", unknown).values, columns.get("mtime", unknown).values
        file = re.compile(rf"{re.escape(package)}/({re.escape(package)}_({_VERSION.pattern})"
                          rf"\.tar\.(?:gz|bz2|xz))")  # fmt: skip
        for name, size, mtime in zip(rows.values, sizes, mtimes, strict=True):
            if (match := file.fullmatch(name)) is not None:
                size, mtime = _known(size), _known(mtime)
                yield (package, match[1], match[2], None if size is None else int(size),
                       None if mtime is None else _stamp(mtime))  # fmt: skip


def _known(value: float | None) -> float | None:
    """A number of an R vector, None for NA (a NaN, for doubles)."""
    return None if value is None or value != value else value


def _stamp(epoch: float) -> str:
    """Epoch seconds as the database keeps times (repo.db.now)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
