"""A channel's upstreams and its name rules: the SQL and the checks an admin's input needs.

At most one upstream per side (pypi, cran) per channel. Credentials are kept for the server's
use only: nothing here returns them to a caller that shows things (see `Mirror.public`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..db import Connection, IntegrityError, Row, now, transaction
from ..errors import Conflict, Invalid, NotFound

KINDS = ("pypi", "cran")
MODES = ("passive", "active")
# mirror.md R1 and R28: PyPI's own max-age; R caches an index for an hour per session.
DEFAULT_TTL = {"pypi": timedelta(minutes=10), "cran": timedelta(hours=1)}
DEFAULT_SYNC_EVERY = timedelta(hours=24)  # an active mirror's sync, when --every is not given
RULES = ("reserve", "merge")
# R21, in SQL over mirror_files: whether a file's upload-time is after the cutoff bound to its
# one parameter (epoch seconds; NULL for none). One without a readable upload-time never is.
# (julianday is SQLite's; schema-postgres.sql defines it for PostgreSQL.)
YOUNG = "coalesce((julianday(upload_time) - 2440587.5) * 86400.0 > ?, FALSE)"
# A file a dated snapshot lists: uploaded at a known time, at most the given epoch seconds.
UPLOADED_BY = "coalesce((julianday(upload_time) - 2440587.5) * 86400.0 <= ?, FALSE)"
# The characters of a name on each side (PEP 503 normalized; R's package names).
_NAME = {"pypi": re.compile(r"[a-z0-9][a-z0-9._-]*"), "cran": re.compile(r"[A-Za-z][A-Za-z0-9.]*")}
_SIZE = re.compile(r"(\d+)([KMGT]?)(?:i?B)?", re.IGNORECASE)
_SIZE_UNITS = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40}


@dataclass(frozen=True)
class Mirror:
    """One upstream of a channel, as the server uses it."""

    id: int
    channel_id: int
    kind: str
    source: str
    file_hosts: tuple[str, ...]
    ttl: int
    mode: str
    username: str | None
    password: str | None
    quota: int | None = None  # bytes of mirror-only cached files kept (R17)
    min_age: int | None = None  # seconds an upload-time must be past to be offered (R21)
    sync_list: tuple[str, ...] = ()  # active: requirements (pypi) or R package names (cran)
    sync_every: int | None = None  # active: seconds between syncs

    def public(self) -> dict:
        """What may be shown to the channel's owners: never the credentials."""
        return {
            "type": self.kind,
            "source": self.source,
            "file_hosts": list(self.file_hosts),
            "ttl": self.ttl,
            "mode": self.mode,
            "credentials": self.username is not None or self.password is not None,
            "quota": self.quota,
            "min_age": self.min_age,
            "sync": list(self.sync_list),
            "sync_every": self.sync_every,
        }


def _mirror(row: Row) -> Mirror:
    return Mirror(
        id=row["id"], channel_id=row["channel_id"], kind=row["kind"], source=row["source"],
        file_hosts=tuple(json.loads(row["file_hosts"])), ttl=row["ttl"], mode=row["mode"],
        username=row["username"], password=row["password"], quota=row["quota"],
        min_age=row["min_age"], sync_list=tuple(json.loads(row["sync_list"])),
        sync_every=row["sync_every"],
    )  # fmt: skip


def cutoff(min_age: int | None, moment: float) -> float | None:
    """The upload-time (epoch seconds) after which a file is too young to offer at `moment`
    (R21); None when the mirror has no minimum age."""
    return None if min_age is None else moment - min_age


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise Invalid(f"Invalid type '{kind}': use pypi or cran")


def parse_size(text: str) -> int:
    """`50G`, `500M`, `64K` or plain bytes: binary units (1G = 2**30 bytes), K to T."""
    match = _SIZE.fullmatch((text or "").strip())
    if not match:
        raise Invalid(f"Invalid size '{text}': use a number and K, M, G or T, e.g. 50G")
    return int(match[1]) << _SIZE_UNITS[match[2].lower()]


def check_source(source: str) -> str:
    """An upstream root URL: http(s), with a host, no credentials in it (they are options).
    A refusal never repeats the URL: it may carry a password or a token, and is logged."""
    try:
        parts = urlsplit(source)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        raise Invalid("Invalid source: not a URL (a host or port that cannot be read)") from None
    if parts.username or parts.password:
        raise Invalid("Give upstream credentials with --username and --password, not in the URL")
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise Invalid("Invalid source: use an http:// or https:// URL with a host")
    if parts.query or parts.fragment:
        raise Invalid("Invalid source: no query or fragment")
    return source if source.endswith("/") else source + "/"


def create(db: Connection, channel_id: int, kind: str, source: str, *,
           ttl: timedelta | None = None, mode: str = "passive", file_hosts: tuple[str, ...] = (),
           username: str | None = None, password: str | None = None, quota: int | None = None,
           min_age: timedelta | None = None, sync: tuple[str, ...] = (),
           every: timedelta | None = None) -> Mirror:  # fmt: skip
    """Give the channel an upstream for `kind`; Conflict when it has one already.

    `quota`: bytes of cached files the mirror alone holds, past which the least recently
    downloaded are evicted (R17). `min_age`: upstream files uploaded less long ago are not
    offered (R21); pypi only, as CRAN indexes carry no upload time. An `active` mirror also
    prefetches `sync` (requirements, or R package names) `every` so often (R0, R5).
    """
    _check_kind(kind)
    if quota is not None and not 1 <= quota < 2**63:
        raise Invalid("Invalid quota: at least 1 byte, and less than 8 EiB")
    age = None if min_age is None else int(min_age.total_seconds())
    if age is not None and (age < 1 or kind != "pypi"):
        raise Invalid("Invalid --min-age: at least 1 second, for a pypi upstream only (CRAN"
                      " indexes carry no upload time)")  # fmt: skip
    if mode not in MODES:
        raise Invalid(f"Invalid mode '{mode}': use passive or active")
    sync_every = _sync_every(mode, sync, every)
    synced = [_sync_entry(kind, entry) for entry in sync]
    seconds = int((ttl or DEFAULT_TTL[kind]).total_seconds())
    if seconds < 1:
        raise Invalid("Invalid TTL: at least 1 second")
    hosts = tuple(host.strip().lower() for host in file_hosts)
    if any(not host or "/" in host for host in hosts):
        raise Invalid("Invalid --file-host: a host name or address, without a scheme or path")
    try:
        with transaction(db):
            db.execute(
                "INSERT INTO mirrors (channel_id, kind, source, file_hosts, ttl, mode, username,"
                " password, created, quota, min_age, sync_list, sync_every)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (channel_id, kind, check_source(source), json.dumps(hosts), seconds, mode,
                 username, password, now(), quota, age, json.dumps(synced), sync_every),
            )  # fmt: skip
    except IntegrityError:
        raise Conflict(f"The channel already mirrors a {kind} upstream: remove it first") from None
    found = find(db, channel_id, kind)
    assert found is not None
    return found


def _sync_every(mode: str, sync: tuple[str, ...], every: timedelta | None) -> int | None:
    """An active mirror's period in seconds; a passive one has none and no list."""
    if mode == "passive":
        if sync or every is not None:
            raise Invalid("A sync list and period are for an active mirror (--mode active)")
        return None
    if not sync:
        raise Invalid("An active mirror needs what to sync: a requirements file, or R packages")
    seconds = int((every or DEFAULT_SYNC_EVERY).total_seconds())
    if seconds < 1:
        raise Invalid("Invalid sync period: at least 1 second")
    return seconds


def _sync_entry(kind: str, entry: str) -> str:
    """One entry of a sync list as stored: a requirement pip would take, or an R name."""
    if kind == "cran":
        if not _NAME["cran"].fullmatch(entry):
            raise Invalid(f"Invalid R package name '{entry}'")
        return entry
    try:
        return str(Requirement(entry))
    except InvalidRequirement as error:
        raise Invalid(f"Invalid requirement '{entry}': {error}") from None


def by_id(db: Connection, mirror_id: int) -> Mirror | None:
    """The upstream with this id, if it is still there."""
    row = db.execute("SELECT * FROM mirrors WHERE id = ?", (mirror_id,)).fetchone()
    return _mirror(row) if row else None


def find(db: Connection, channel_id: int, kind: str) -> Mirror | None:
    """The channel's upstream for `kind`, if it has one."""
    row = db.execute(
        "SELECT * FROM mirrors WHERE channel_id = ? AND kind = ?", (channel_id, kind)
    ).fetchone()
    return _mirror(row) if row else None


def listing(db: Connection, channel_id: int | None = None) -> list[dict]:
    """Every upstream (of one channel, or all), with its health, never its credentials."""
    rows = db.execute(
        "SELECT mirrors.*, channels.name AS channel,"
        " (SELECT count(DISTINCT project) FROM mirror_files"
        "  WHERE mirror_id = mirrors.id AND blob_sha256 IS NOT NULL) AS cached_projects,"
        " (SELECT CAST(coalesce(sum(size), 0) AS BIGINT) FROM mirror_files"
        "  WHERE mirror_id = mirrors.id AND blob_sha256 IS NOT NULL) AS cached_bytes"
        " FROM mirrors JOIN channels ON channels.id = mirrors.channel_id"
        " WHERE CAST(? AS BIGINT) IS NULL OR mirrors.channel_id = ?"
        " ORDER BY channels.name, mirrors.kind",
        (channel_id, channel_id),
    ).fetchall()
    return [
        {"channel": row["channel"], **_mirror(row).public(), "last_success": row["last_success"],
         "last_error": row["last_error"], "last_error_at": row["last_error_at"],
         "last_sync": row["last_sync"], "sync_result": row["sync_result"],
         "cached_projects": row["cached_projects"], "cached_bytes": row["cached_bytes"]}
        for row in rows
    ]  # fmt: skip


def remove(db: Connection, channel_id: int, kind: str) -> None:
    """Stop mirroring: the upstream's pages and file rows go; blobs only by `repo gc`."""
    with transaction(db):
        cursor = db.execute(
            "DELETE FROM mirrors WHERE channel_id = ? AND kind = ?", (channel_id, kind)
        )
        if cursor.rowcount == 0:
            raise NotFound(f"The channel mirrors no {kind} upstream")


def mark_stale(db: Connection, mirror_id: int, name: str | None = None) -> int:
    """Make the next request for each cached page (or only `name`'s) ask upstream again,
    whatever its TTL (the refresh button, `repo mirror refresh`); return how many."""
    with transaction(db):
        return db.execute(
            "UPDATE mirror_pages SET checked = 0 WHERE mirror_id = ?"
            " AND (CAST(? AS TEXT) IS NULL OR key = ?)",
            (mirror_id, name, name),
        ).rowcount


def normalized(kind: str, name: str) -> str:
    """A name as rules compare it: PEP 503 for Python, as written for R (case matters)."""
    return canonicalize_name(name) if kind == "pypi" else name


def add_rule(db: Connection, channel_id: int, kind: str, pattern: str,
             rule: str) -> None:  # fmt: skip
    """Reserve a name or prefix (`acme-*`), or merge upstream releases into a private name."""
    if rule not in RULES:
        raise Invalid(f"Invalid rule '{rule}'")
    _check_kind(kind)
    prefix, star, rest = pattern.partition("*")
    prefix = normalized(kind, prefix)
    if not _NAME[kind].fullmatch(prefix) or rest or (star and rule == "merge"):
        raise Invalid(
            f"Invalid name '{pattern}': a name, or for a reservation a prefix ending in '*'"
            " (merging needs exact names)"
        )
    with transaction(db):
        db.execute(
            "INSERT INTO mirror_rules (channel_id, kind, pattern, rule)"
            " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (channel_id, kind, prefix + star, rule),
        )


def rules(db: Connection, channel_id: int, kind: str) -> dict[str, list[str]]:
    """The channel's patterns by rule."""
    found: dict[str, list[str]] = {rule: [] for rule in RULES}
    for row in db.execute(
        "SELECT pattern, rule FROM mirror_rules WHERE channel_id = ? AND kind = ? ORDER BY pattern",
        (channel_id, kind),
    ):
        found[row["rule"]].append(row["pattern"])
    return found


def upstream_may_serve(db: Connection, channel_id: int, kind: str, name: str) -> bool:
    """Whether upstream may be asked for `name` and show files of it in this channel.

    Private wins (mirror.md R23-R25): a name the channel holds a private upload of, or that
    matches a reservation, never reaches upstream, whatever version upstream has, unless an
    owner merged that exact name in.
    """
    key = normalized(kind, name)
    channel_rules = rules(db, channel_id, kind)
    if key in channel_rules["merge"]:
        return True
    for pattern in channel_rules["reserve"]:
        if key == pattern or (pattern.endswith("*") and key.startswith(pattern[:-1])):
            return False
    private = db.execute(
        "SELECT 1 FROM packages WHERE channel_id = ? AND kind = ? AND name = ?",
        (channel_id, kind, key),
    ).fetchone()
    return private is None
