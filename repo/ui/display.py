"""How the web UI shows sizes, times and versions: pure functions, installed as template
filters by the blueprint."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from packaging.version import Version

from ..cran.description import version_key

_UNITS = ("KiB", "MiB", "GiB", "TiB")


def size(count: int) -> str:
    """Bytes for people: `512 B`, `1.5 KiB`, `12 MiB`."""
    value, unit = float(count), "B"
    for bigger in _UNITS:
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    if unit == "B":
        return f"{count} B"
    return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"


def when(stamp: str) -> str:
    """A stored UTC time (`2026-11-22T08:58:01.123456Z`) to the minute: `2026-11-22 08:58`."""
    return datetime.strptime(stamp[:16], "%Y-%m-%dT%H:%M").strftime("%Y-%m-%d %H:%M")


def _version_order(kind: str):
    # Python versions compare by PEP 440, R versions as R's package_version does (1.10 > 1.9).
    return Version if kind == "pypi" else version_key


def newest_first(versions: Iterable[str], kind: str) -> list[str]:
    return sorted(versions, key=_version_order(kind), reverse=True)


def by_version(kind: str, files: Sequence) -> list[tuple[str, list]]:
    """Files grouped by version, the newest version first, each group in the given order."""
    versions = newest_first({row["version"] for row in files}, kind)
    return [(version, [row for row in files if row["version"] == version]) for version in versions]
