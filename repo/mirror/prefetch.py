"""Filling a mirror's cache ahead of need (`repo mirror prefetch`, mirror.md R5): before an
upstream outage, or for CI machines that must never wait on it.

One name at a time, through the same paths a client's request takes (the page or index made
fresh, then each file streamed, verified and stored), so the upstream sees one gentle client
with repo's User-Agent. Requirements are not resolved: list every package you want cached
(`pip freeze` output is a good list).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flask import Flask
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..cran.description import version_key
from ..db import Connection, Row, connection_for
from ..errors import Invalid, RepoError
from . import cran as mirror_cran
from . import fetch, settings
from . import pypi as mirror_pypi
from .upstream import clock_of


@dataclass
class Outcome:
    """What prefetching did: files now cached, and what could not be had."""

    cached: int = 0
    problems: int = 0


def requirements(lines: Iterable[str]) -> list[Requirement]:
    """The requirements of a requirements file: comments, blank lines and pip options
    (`-r`, `--index-url`, ...) skipped; a line pip would refuse is an error naming it."""
    found = []
    for number, raw in enumerate(lines, 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            found.append(Requirement(line))
        except InvalidRequirement as error:
            raise Invalid(f"Line {number} is not a requirement: {error}") from None
    return found


def python(app: Flask, channel: Row, wanted: list[Requirement],
           say: Callable[[str], None]) -> Outcome:  # fmt: skip
    """Cache every file of the newest version each requirement allows (yanked versions only
    when pinned with ==, as PEP 592 has installers do)."""
    db = connection_for(app)
    outcome = Outcome()
    for requirement in wanted:
        try:
            mirror_pypi.refresh(app, channel, requirement.name)
        except RepoError as error:
            outcome.problems += 1
            say(f"{requirement.name}: {error.message}")
            continue
        mirror = settings.find(db, channel["id"], "pypi")
        assert mirror is not None  # refresh refuses a channel without one
        moment = clock_of(app)()
        rows = _newest(db, mirror.id, requirement, settings.cutoff(mirror.min_age, moment))
        if not rows:
            outcome.problems += 1
            say(f"{requirement}: no version upstream matches")
            continue
        for row in rows:
            _fetch(app, db, mirror, row, say, outcome)
    return outcome


def _newest(db: Connection, mirror_id: int, requirement: Requirement,
            cutoff: float | None) -> list[Row]:  # fmt: skip
    """Never a file the mirror's minimum age hides (R21), which it would not serve."""
    rows = db.execute(
        "SELECT * FROM mirror_files WHERE mirror_id = ? AND project = ? AND listed = 1"
        f" AND NOT {settings.YOUNG}",
        (mirror_id, canonicalize_name(requirement.name), cutoff),
    ).fetchall()
    pinned = any(spec.operator in ("==", "===") for spec in requirement.specifier)
    by_version: dict[Version, list[Row]] = {}
    for row in rows:
        try:
            version = Version(row["version"])
        except InvalidVersion:
            continue
        if (row["yanked"] and not pinned) or not requirement.specifier.contains(version):
            continue
        by_version.setdefault(version, []).append(row)
    return by_version[max(by_version)] if by_version else []


def cran(app: Flask, channel: Row, packages: list[str],
         say: Callable[[str], None]) -> Outcome:  # fmt: skip
    """Cache the current source package of each R package named."""
    db = connection_for(app)
    outcome = Outcome()
    mirror = settings.find(db, channel["id"], "cran")
    if mirror is None:
        raise Invalid(f"Channel '{channel['name']}' mirrors no cran upstream")
    try:
        with app.test_request_context():
            mirror_cran.contrib(app, db, channel["id"], mirror_cran.SOURCE, "PACKAGES")
    except RepoError as error:
        raise Invalid(f"The upstream index could not be read: {error.message}") from None
    for package in packages:
        if not settings.upstream_may_serve(db, channel["id"], "cran", package):
            outcome.problems += 1
            say(f"{package}: private in this channel, never fetched from upstream")
            continue
        rows = db.execute(
            "SELECT * FROM mirror_files WHERE mirror_id = ? AND subdir = ? AND project = ?"
            " AND listed = 1",
            (mirror.id, mirror_cran.SOURCE, package),
        ).fetchall()
        if not rows:
            outcome.problems += 1
            say(f"{package}: not in the upstream's index")
            continue
        _fetch(app, db, mirror, max(rows, key=lambda r: version_key(r["version"])), say, outcome)
    return outcome


def _fetch(app: Flask, db: Connection, mirror: settings.Mirror, row: Row,
           say: Callable[[str], None], outcome: Outcome) -> None:  # fmt: skip
    """Fetch one file, and a wheel's PEP 658 metadata when upstream offers it (pip and uv ask
    for it before the wheel), as a client's GETs would, reading each to the end."""
    wanted = [(row["filename"], fetch.serve, row["blob_sha256"])]
    if row["core_metadata"]:
        wanted.append((f"{row['filename']}.metadata", fetch.serve_metadata, row["metadata_blob"]))
    for name, serve, held in wanted:
        if held is not None:
            say(f"{name}: already cached")
            continue
        try:
            with app.test_request_context():
                response = serve(app, db, mirror, row)
                try:
                    for _ in response.response:
                        pass
                finally:
                    response.close()
        except (RepoError, fetch.BrokenTransfer) as error:
            outcome.problems += 1
            say(f"{name}: {getattr(error, 'message', str(error)) or 'failed'}")
            continue
        outcome.cached += 1
        say(f"{name}: cached")
