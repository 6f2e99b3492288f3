"""What `DATE` in `/snapshot/DATE/` may be, and the instant it names: a day (`2026-11-15`,
the end of that day, UTC) or an RFC 3339 instant (`2026-11-15T10:00:00Z`, any offset).

Instants are compared as the database stores times (repo.db.now: ISO 8601, UTC, microseconds
and a Z, one fixed width), so a string comparison orders them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from ..errors import Invalid

STORED = "%Y-%m-%dT%H:%M:%S.%fZ"
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# RFC 3339 section 5.6 date-time: "T" and "Z" in either case, fractions of any length.
_INSTANT = re.compile(
    r"(?P<second>\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d+))?"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2})"
)
USAGE = "use a day (2026-11-15, its end in UTC) or an RFC 3339 instant (2026-11-15T10:00:00Z)"


def parse(text: str, moment: datetime) -> datetime:
    """The instant `text` names, in UTC; 400 when it is not a day or an RFC 3339 instant, or
    when it is later than `moment` (now: what a channel will hold is not known yet)."""
    instant = _instant(text)
    if instant is None:
        raise Invalid(f"Not a snapshot date: '{text}': {USAGE}")
    if instant > moment:
        whole_day = " (a day means its end, UTC)" if _DAY.fullmatch(text) else ""
        raise Invalid(f"Snapshot '{text}' is in the future{whole_day}: {USAGE} that has passed")
    return instant


def _instant(text: str) -> datetime | None:
    try:
        if _DAY.fullmatch(text):
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
            return day + timedelta(days=1, microseconds=-1)
        match = _INSTANT.fullmatch(text)
        if match is None:
            return None
        fraction = (match["fraction"] or "")[:6].ljust(6, "0")
        offset = "+00:00" if match["offset"] in "Zz" else match["offset"]
        return datetime.fromisoformat(f"{match['second'].upper()}.{fraction}{offset}").astimezone(
            UTC
        )
    except ValueError:  # 2026-02-30, 25:00:00, an offset past 24 hours
        return None


def stored(instant: datetime) -> str:
    """`instant` as the database stores times, to compare with them."""
    return instant.astimezone(UTC).strftime(STORED)


def label(instant: datetime) -> str:
    """`instant` as an RFC 3339 instant in UTC, to show and to put in a URL."""
    return instant.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
