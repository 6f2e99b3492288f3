"""A channel's contrib directories with its CRAN-like upstream's rows merged in, and that
upstream's files fetched on first request (mirror.md R27-R29).

The channel serves PACKAGES, .gz and .rds built from the rows repo.mirror.cran_indexes stored
and its own (repo.cran.cache) with repo.cran.index, that is exactly what `tools::write_PACKAGES`
writes for them: the standard fields in R's order, each upstream value verbatim (OS_type,
Priority, Archs, MD5sum, NeedsCompilation, License unstandardised), and `File` where upstream had
one. What write_PACKAGES never writes stays in the row only: other fields, and `Path`, which
instead decides the upstream URL of the file the row names, served here at `<contrib>/<file>`
like any other.

Private wins (R23, R27): the rows of a package the channel holds, or has reserved, are left
out of every tree, and its files are never fetched. `Meta/archive.rds` is merged (mirror.md
§9, decided): the channel serves one archive.rds of the upstream's archived versions, the
versions upstream stopped listing, and the channel's own older versions, a private name's
only from the channel.

While the upstream is down (its circuit breaker open) the indexes list only the upstream
files held here (R8), so R picks versions it can install; without any copy an index answers
503 unless the channel has packages of its own there (R26).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from flask import Flask, Response

from ..cran import index, paths
from ..cran.description import version_key
from ..db import Connection, Row
from ..errors import RepoError
from . import cran_indexes, fetch, settings
from .cran_indexes import SOURCE, Unusable
from .settings import Mirror
from .upstream import Refused, UpstreamDown, bad_gateway, for_mirror, unavailable

KIND = "cran"
# Binary trees as CRAN has them; R 4.6's bin/linux trees name builds without bound, so they
# list the channel's own binaries only.
MIRRORED_TREES = ("bin/windows/", "bin/macosx/")
STALE = "stale; upstream=down"  # X-Repo-Cache (R6)
# What keeps an index from being fresh, each logged where it happened.
_TROUBLE = (UpstreamDown, Unusable, Refused)


@dataclass(frozen=True)
class Contrib:
    """A mirror's side of a channel's contrib directories, as repo.cran.cache.Mirrored."""

    mirror: Mirror
    held: bool  # the upstream is down: list only the files we hold (R8)
    stale: bool  # the upstream could not be asked: what is listed is our last copy (R6)

    def state(self, db: Connection) -> tuple[int, str]:
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

    def entries(self, db: Connection, subdir: str) -> list[index.Entry]:
        """The upstream rows of `subdir` the channel shows: every field as upstream gave it,
        its File too (R27)."""
        listed = "blob_sha256 IS NOT NULL AND fields != '{}'" if self.held else "listed = 1"
        entries = []
        for row in self._shown_rows(db, "project, fields", subdir, listed):
            fields = json.loads(row["fields"])
            entries.append(index.Entry(fields, fields.get("File")))
        return entries

    def archived(self, db: Connection) -> dict[str, list[tuple[str, int, float]]]:
        """The upstream versions of src/contrib not listed in its PACKAGES: archive.rds's and
        the ones it stopped listing since, oldest first; while down, only those held."""
        held = " AND blob_sha256 IS NOT NULL" if self.held else ""
        rows = self._shown_rows(db, "project, version, filename, size, upload_time", SOURCE,
                                f"listed = 0{held}")  # fmt: skip
        return self.archive_of(rows)

    @staticmethod
    def archive_of(rows: list[Row]) -> dict[str, list[tuple[str, int, float]]]:
        """Upstream rows as archive.rds lists them, by package, oldest version first."""
        archive: dict[str, list[tuple[str, int, float]]] = {}
        for row in sorted(rows, key=lambda r: (r["project"], version_key(r["version"]))):
            moment = datetime.fromisoformat(row["upload_time"]) if row["upload_time"] else None
            archive.setdefault(row["project"], []).append(
                (f"{row['project']}/{row['filename']}", row["size"] or 0,
                 moment.timestamp() if moment else 0.0)
            )  # fmt: skip
        return archive

    def _shown_rows(self, db: Connection, columns: str, subdir: str, where: str,
                    parameters: tuple = ()) -> list[Row]:  # fmt: skip
        """The mirror's rows of `subdir` that match `where` (with `parameters`), of the
        packages the channel shows."""
        shown = _shown(db, self.mirror.channel_id)
        rows = db.execute(
            f"SELECT {columns} FROM mirror_files WHERE mirror_id = ? AND subdir = ? AND {where}",
            (self.mirror.id, subdir, *parameters),
        )
        return [row for row in rows if shown(row["project"])]


def contrib(app: Flask, db: Connection, channel_id: int, subdir: str,
            name: str) -> Contrib | None:  # fmt: skip
    """The mirror's part of one index file's answer, its upstream index made fresh first
    (R28); None when the channel mirrors no CRAN-like upstream there. Raises 503 when the
    upstream is down and nothing can be listed (R6)."""
    mirror = settings.find(db, channel_id, KIND)
    if mirror is None or not mirrored_tree(subdir):
        return None
    upstream = for_mirror(app, db, mirror)
    try:
        cran_indexes.freshen_index(upstream, subdir)
        stale = False
    except _TROUBLE as error:
        if not (cran_indexes.has_copy(db, mirror.id, subdir) or _has_own(db, channel_id, subdir)):
            raise _unavailable(error) from None
        stale = True
    if name == paths.ARCHIVE_INDEX and not stale:
        # Without a fresh archive.rds, the one of our last copy (logged where it failed).
        with suppress(*_TROUBLE):
            cran_indexes.freshen_archive(upstream)
    held = upstream.retry_after() > 0
    return Contrib(mirror, held, stale or held)


def package_file(app: Flask, db: Connection, channel_id: int, wanted: paths.CranPath,
                 mimetype: str) -> Response | None:  # fmt: skip
    """An upstream package file, fetched on first request through repo.mirror.fetch (MD5sum
    checked, one download however many ask); None when the channel mirrors nothing of that
    name: no mirror, a private or reserved name (R23), a file upstream never listed."""
    mirror = settings.find(db, channel_id, KIND)
    assert wanted.file is not None
    named = wanted.archived_package or wanted.file.split("_", 1)[0]
    if mirror is None or not mirrored_tree(wanted.subdir):
        return None
    if not settings.upstream_may_serve(db, channel_id, KIND, named):
        return None
    row = _file_row(db, mirror.id, wanted)
    if row is None:
        # Not in what we stored: a tree not asked for yet, or a version archived meanwhile.
        upstream = for_mirror(app, db, mirror)
        try:
            cran_indexes.freshen_index(upstream, wanted.subdir)
            if wanted.subdir == SOURCE and _file_row(db, mirror.id, wanted) is None:
                cran_indexes.freshen_archive(upstream)
        except _TROUBLE as error:
            raise _unavailable(error) from None
        row = _file_row(db, mirror.id, wanted)
    if row is None or not settings.upstream_may_serve(db, channel_id, KIND, row["project"]):
        return None
    return fetch.serve(app, db, mirror, row, mimetype, _fallbacks(row))


def mirrored_tree(subdir: str) -> bool:
    """Whether the channel's upstream is asked for the contrib directory `subdir`."""
    return subdir == SOURCE or subdir.startswith(MIRRORED_TREES)


def _unavailable(error: Exception) -> RepoError:
    """503 with Retry-After and the upstream's trouble (R6); R shows only "cannot open URL",
    so the reason is in the log and the body for curl users."""
    if isinstance(error, UpstreamDown):
        return unavailable(f"Service Unavailable: {error.message}; nothing cached")
    return bad_gateway(str(error))


def _has_own(db: Connection, channel_id: int, subdir: str) -> bool:
    """Whether the channel holds packages of its own in `subdir` (R26: always listed)."""
    return db.execute(
        "SELECT 1 FROM files WHERE channel_id = ? AND kind = ? AND subdir = ? AND yanked = 0",
        (channel_id, KIND, subdir),
    ).fetchone() is not None  # fmt: skip


def _shown(db: Connection, channel_id: int) -> Callable[[str], bool]:
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


def _file_row(db: Connection, mirror_id: int, wanted: paths.CranPath):
    row = db.execute(
        "SELECT * FROM mirror_files WHERE mirror_id = ? AND subdir = ? AND filename = ?",
        (mirror_id, wanted.subdir, wanted.file),
    ).fetchone()
    if row is None or wanted.archived_package not in (None, row["project"]):
        return None
    return row


def _fallbacks(row: Row) -> list[str]:
    """Where else upstream may keep a source file: CRAN moves a version from src/contrib to
    Archive/<pkg>/ on a new release (R29), and the other way round for an archived row."""
    if row["subdir"] != SOURCE:
        return []
    places = [f"{SOURCE}/{row['filename']}", f"{SOURCE}/Archive/{row['project']}/{row['filename']}"]
    return [url for url in places if url != row["url"]]
