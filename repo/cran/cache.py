"""A channel's CRAN index files, built once per channel revision and then served from disk.

PACKAGES, PACKAGES.gz, PACKAGES.rds (and src/contrib's Meta/archive.rds) of one contrib
directory are written together from one database snapshot, so the three always agree (R reads
only the .rds, pak only the .gz). They live under `DATA_DIR/cache/cran/<channel>/r<revision>/`:
an upload, yank or delete bumps the revision, and the next request builds the new set.

A channel that mirrors a CRAN-like upstream adds the upstream's rows (repo.mirror.cran): they
change without the revision, so its sets live under `r<revision>-<serial>-<tag>/`, where the
serial grows with every change of the stored upstream indexes and the tag names the rest of
what the merge depends on (which mirror, its name rules, whether the upstream is down).

A contrib directory without packages costs nothing on disk: any well-formed R version or build
name is a valid URL, and anonymous readers could otherwise make the server write an index for
each one. Its (constant) index is kept in memory instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from calendar import timegm
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from time import strptime
from typing import Protocol

from ..blobs import fsync_directory
from ..db import Connection, Row, snapshot
from . import index, rds
from .description import version_key
from .paths import ARCHIVE_INDEX, SOURCE_DIR

ETAGS = "etags.json"
# The longest a request takes from reading its channel's revision to opening that revision's
# index files, a build of them included.
READ_WINDOW = 60
# The file name R asks for when PACKAGES has no File field (cran.md §2.4).
DEFAULT_EXTENSION = {"src": ".tar.gz", "bin/windows": ".zip", "bin/macosx": ".tgz"}
# r<revision>, or r<revision>-<serial>-<tag> with a mirror's rows in the set.
_STATE = re.compile(r"r(\d+)(?:-(\d+)-([0-9a-f]+))?")


class Mirrored(Protocol):
    """What a channel's upstream adds to its contrib directories (repo.mirror.cran), read in
    the snapshot the channel's own rows are read in, so that the two always agree."""

    def state(self, db: Connection) -> tuple[int, str]:
        """(serial, tag): the serial grows with every change of the upstream rows; the tag
        names everything else the rows depend on."""

    def entries(self, db: Connection, subdir: str) -> list[index.Entry]:
        """The upstream rows to list in `subdir`, beside the channel's own."""

    def archived(self, db: Connection) -> dict[str, list[tuple[str, int, float]]]:
        """The upstream's archived versions for Meta/archive.rds, by package, oldest first."""


def root(data_dir: str | os.PathLike) -> Path:
    """Where the CRAN index cache of every channel lives under the data dir."""
    return Path(data_dir) / "cache" / "cran"


def index_file(db: Connection, cache_root: Path, channel_id: int, subdir: str, name: str,
               mirrored: Mirrored | None = None) -> tuple[Path | bytes, str]:  # fmt: skip
    """One index file of `subdir` and its strong ETag: a path in the cache (the set is built
    if needed), or the bytes of the empty index when the directory holds no packages.
    `mirrored` adds a mirror's upstream rows (mirror.md R27, R28)."""
    with snapshot(db):
        revision = db.execute(
            "SELECT revision FROM channels WHERE id = ?", (channel_id,)
        ).fetchone()[0]
        state = f"r{revision}"
        if mirrored is not None:
            state += "-{}-{}".format(*mirrored.state(db))
        directory = cache_root / str(channel_id) / state / subdir
        if (directory / ETAGS).is_file():
            return _served(directory, name)

        def rows() -> list[Row]:
            return db.execute(
                "SELECT files.*, packages.name AS package FROM files"
                " JOIN packages ON packages.id = files.package_id"
                " WHERE files.channel_id = ? AND files.kind = 'cran' AND files.subdir = ?"
                " AND files.yanked = 0",
                (channel_id, subdir),
            ).fetchall()

        found = index_set(db, directory, subdir, name, rows, mirrored)
        if isinstance(found[0], Path):
            _forget_older(cache_root / str(channel_id), state)
        return found


def index_set(db: Connection, directory: Path, subdir: str, name: str,
              rows: Callable[[], list[Row]],
              mirrored: Mirrored | None) -> tuple[Path | bytes, str]:  # fmt: skip
    """One index file of the set kept at `directory` (built first if need be, from `rows()`:
    the channel's own unyanked files of `subdir`, and a mirror's), as index_file answers it.
    For repo.snapshots too, whose sets are keyed on an instant's state instead."""
    if not (directory / ETAGS).is_file():
        own = rows()
        upstream, archived = [], {}
        if mirrored is not None:
            upstream = mirrored.entries(db, subdir)
            archived = mirrored.archived(db) if subdir == SOURCE_DIR else {}
        if not (own or upstream or archived):
            return _empty(subdir == SOURCE_DIR)[name]
        _build(directory, subdir, _contents(subdir, own, upstream, archived))
    return _served(directory, name)


def _served(directory: Path, name: str) -> tuple[Path, str]:
    etags = json.loads((directory / ETAGS).read_text())
    return directory / name, etags[name]


@cache
def _empty(source: bool) -> dict[str, tuple[bytes, str]]:
    """The index files of a contrib directory with no packages, by name, with their ETags."""
    contents = _contents(SOURCE_DIR if source else "bin", [])
    return {name: (data, _etag(data)) for name, data in contents.items()}


def _etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def _contents(subdir: str, rows: list[Row], upstream: Sequence[index.Entry] = (),
              archived: dict[str, list[tuple[str, int, float]]] | None = None,
              ) -> dict[str, bytes]:  # fmt: skip
    """The index files of one contrib directory from its rows (and a mirror's), by name."""
    latest, older = _split_latest(rows)
    files = [_file_field(row, subdir) for row in latest]
    if any(files):  # then as write_PACKAGES(addFiles = TRUE): every row names its file
        files = [row["filename"] for row in latest]
    entries = []
    for row, file in zip(latest, files, strict=True):
        fields = json.loads(row["metadata"])
        if subdir.startswith("bin/windows/"):
            # write_PACKAGES(type = "win.binary") computes no MD5sum (R 4.2.2 tools:::
            # .process_package_files_for_repository_db), so the upload's md5 stays out.
            fields.pop("MD5sum", None)
        entries.append(index.Entry(fields, file))
    built = index.build([*entries, *upstream], binary=subdir != SOURCE_DIR)
    contents = {
        "PACKAGES": built.packages,
        "PACKAGES.gz": built.packages_gz,
        "PACKAGES.rds": built.packages_rds,
    }
    if subdir == SOURCE_DIR:
        contents[ARCHIVE_INDEX] = rds.archive_index({**(archived or {}), **_archive(older)})
    return contents


def _build(directory: Path, subdir: str, contents: dict[str, bytes]) -> None:
    """Write the index set `contents` of `subdir` into a staging folder, then rename it to
    `directory`.

    The set is fsynced before the rename: after a power cut a renamed set whose files never
    reached the disk (empty or torn) would be served as built until the next revision. The
    rename itself need not be durable, as a lost one only means a rebuild from the database.
    The staging folder sits in the channel's folder, where `repo gc` finds one a killed worker
    left; on any error (a full disk) it is removed.
    """
    etags = {name: _etag(data) for name, data in contents.items()}
    contents[ETAGS] = json.dumps(etags).encode()
    channel_dir = directory.parents[len(Path(subdir).parts)]
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=channel_dir, prefix=".build-"))
    try:
        for name, data in contents.items():
            (staging / name).parent.mkdir(exist_ok=True)
            with open(staging / name, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        for folder in {(staging / name).parent for name in contents}:
            fsync_directory(folder)
        os.rename(staging, directory)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        # Another worker built the same revision first: its files are identical.
        if not (directory / ETAGS).is_file():
            raise


def _split_latest(rows: list[Row]) -> tuple[list[Row], list[Row]]:
    """The highest version of each package, by name; and all the others."""
    by_package: dict[str, list[Row]] = {}
    for row in rows:
        by_package.setdefault(row["package"], []).append(row)
    latest, older = [], []
    for name in sorted(by_package):
        ranked = sorted(by_package[name], key=lambda r: version_key(r["version"]))
        latest.append(ranked[-1])
        older.extend(ranked[:-1])
    return latest, older


def _file_field(row: Row, subdir: str) -> str | None:
    default = default_filename(row["package"], row["version"], subdir)
    return None if row["filename"] == default else row["filename"]


def default_filename(package: str, version: str, subdir: str) -> str:
    """The file R downloads for a row of `subdir` without a File field (cran.md §2.4)."""
    tree = "src" if subdir == SOURCE_DIR else "/".join(subdir.split("/")[:2])
    return f"{package}_{version}{DEFAULT_EXTENSION.get(tree, '')}"


def _archive(rows: list[Row]) -> dict[str, list[tuple[str, int, float]]]:
    archive: dict[str, list[tuple[str, int, float]]] = {}
    for row in sorted(rows, key=lambda r: version_key(r["version"])):
        package = row["package"]
        mtime = timegm(strptime(row["uploaded"][:19], "%Y-%m-%dT%H:%M:%S"))
        archive.setdefault(package, []).append(
            (f"{package}/{row['filename']}", row["size"], float(mtime))
        )
    return archive


def _forget_older(channel_dir: Path, state: str) -> None:
    """Remove the sets of past states that no request can still be reading. A request that
    read state M from the database began before the next state was committed, so before any
    newer set was made: once a newer set is READ_WINDOW seconds old, M's is nobody's.
    (Counting revisions instead, with uploads coming fast, removed a set between a request's
    look at the revision and its open of the files.) Sets of another mirror tag are not
    ordered against this one: `repo gc` removes them."""
    current = _STATE.fullmatch(state)
    sets = [(match, entry) for entry in channel_dir.iterdir()
            if (match := _STATE.fullmatch(entry.name)) is not None]  # fmt: skip
    cutoff = time.time() - READ_WINDOW
    for old, path in sets:
        if not _before(old, current):
            continue
        for newer, newer_path in sets:
            try:
                superseded = _before(old, newer) and newer_path.stat().st_mtime <= cutoff
            except FileNotFoundError:  # another worker's doing the same
                continue
            if superseded:
                shutil.rmtree(path, ignore_errors=True)
                break


def _before(old: re.Match, new: re.Match) -> bool:
    """Whether state `old` was committed before `new`: an older revision, or an older serial
    of the same mirror tag in the same revision."""
    if int(old[1]) != int(new[1]):
        return int(old[1]) < int(new[1])
    return old[3] is not None and old[3] == new[3] and int(old[2]) < int(new[2])


def prune(db: Connection, cache_root: Path, grace: float,
          dry_run: bool = False) -> list[Path]:  # fmt: skip
    """Remove (or with dry_run, list) what no request will read again, when older than
    `grace` seconds: the index sets of past revisions, of channels that are gone, and build
    folders a killed worker left. For `repo gc`."""
    if not cache_root.is_dir():
        return []
    revisions = dict(db.execute("SELECT id, revision FROM channels").fetchall())
    cutoff = time.time() - grace
    doomed = []
    for channel_dir in cache_root.iterdir():
        current = revisions.get(int(channel_dir.name)) if channel_dir.name.isdigit() else None
        for entry in channel_dir.iterdir() if channel_dir.is_dir() else []:
            state = _STATE.fullmatch(entry.name)
            of_current = state is not None and int(state[1]) == current
            if not of_current and entry.stat().st_mtime <= cutoff:
                doomed.append(entry)
    if not dry_run:
        for path in doomed:
            shutil.rmtree(path, ignore_errors=True)
        for channel_dir in cache_root.iterdir():
            if channel_dir.is_dir() and not any(channel_dir.iterdir()):
                channel_dir.rmdir()
    return sorted(doomed)
