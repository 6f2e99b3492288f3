"""The simple index pages: PEP 503 HTML and PEP 691 JSON, and the choice between them by Accept.

Pure over rows the caller has already fetched and sorted, so the routes stay thin and the exact
bytes pip and uv parse are pinned by unit tests.
"""

import functools
import json
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import quote

from packaging.version import Version

HTML = "text/html"
V1_HTML = "application/vnd.pypi.simple.v1+html"
V1_JSON = "application/vnd.pypi.simple.v1+json"

# 1.4 = PEP 792 project status, which the JSON pages carry; pypi-simple 1.8 warns above 1.4, and
# PEP 833 freezes the HTML there.
API_VERSION = "1.4"

# Tie order: JSON is what pip and uv prefer and the richer format (PEP 700 fields are JSON-only).
_OFFERS = (V1_JSON, V1_HTML, HTML)
# PEP 691: "latest" names whichever v1 the server speaks; the response names the real type.
_ALIASES = {
    "application/vnd.pypi.simple.latest+json": V1_JSON,
    "application/vnd.pypi.simple.latest+html": V1_HTML,
}


@dataclass(frozen=True)
class FileEntry:
    """One distribution file as the simple pages show it."""

    filename: str
    version: str
    sha256: str
    size: int
    upload_time: str  # ISO 8601 UTC as stored, e.g. "2026-11-26T14:23:15.123456Z"
    requires_python: str | None
    metadata_sha256: str | None  # PEP 658/714 hash of the served METADATA; None = no file
    yanked: bool
    yanked_reason: str | None


@functools.lru_cache(maxsize=256)
def choose_format(accept: str | None, format_param: str | None = None) -> str | None:
    """Content type to answer with, or None when nothing the client accepts is offered (406)."""
    if format_param is not None:
        # PEP 691 spells `?format=application/vnd.pypi.simple.v1+json` with a bare `+`, which
        # query decoding turns into a space; no media type has a space in it.
        format_param = format_param.replace(" ", "+")
        wanted = _ALIASES.get(format_param, format_param)
        return wanted if wanted in _OFFERS else None
    if not accept or not accept.strip():
        return HTML  # Warehouse's default, so browsers and curl get HTML
    ranges = _parse_accept(accept)
    scored = {offer: _quality(offer, ranges) for offer in _OFFERS}
    best = max(q for q, _ in scored.values())
    if best == 0:
        return None
    winners = [offer for offer, (q, _) in scored.items() if q == best]
    # A client that reached the best quality only through */* named no format at all (curl,
    # wget, Java's "*; q=.2"): answer HTML like Warehouse rather than JSON.
    if HTML in winners and all(scored[offer][1] == "*/*" for offer in winners):
        return HTML
    return winners[0]


def _parse_accept(accept: str) -> list[tuple[str, float]]:
    """(media range, q) pairs; tolerant of spaces around ';' and '=', skipping malformed q."""
    ranges = []
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        media = media.lower()
        if not media:
            continue
        if media == "*":
            media = "*/*"  # Java's HttpURLConnection sends "*; q=.2"
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
        if 0 <= q <= 1:  # also rejects nan
            ranges.append((_ALIASES.get(media, media), q))
    return ranges


def _quality(offer: str, ranges: list[tuple[str, float]]) -> tuple[float, str]:
    """The q of the most specific range matching offer (RFC 9110 §12.5.1), and that range."""
    kind = offer.split("/")[0]
    for candidate in (offer, f"{kind}/*", "*/*"):
        matches = [q for media, q in ranges if media == candidate]
        if matches:
            return max(matches), candidate
    return 0.0, ""


def project_list(content_type: str, projects: list[tuple[str, str]]) -> str:
    """The root page; projects = [(display_name, normalized_name)], already sorted."""
    if content_type == V1_JSON:
        return _json({"projects": [{"name": display} for display, _ in projects]})
    links = "".join(
        f'<a href="{escape(quote(normalized))}/">{escape(display)}</a><br>\n'
        for display, normalized in projects
    )
    return _html("Simple index", links)


def project_page(content_type: str, name: str, files: list[FileEntry]) -> str:
    """One project's page (name = normalized); files link to ../../files/<sha256>/<filename>."""
    if content_type == V1_JSON:
        return _json(
            {
                "name": name,
                "versions": sorted({f.version for f in files}, key=Version),
                "files": [_file_json(f) for f in files],
                "project-status": {"status": "active"},
            }
        )
    return _html(f"Links for {name}", "".join(_file_anchor(f) for f in files))


def _url(f: FileEntry) -> str:
    """Relative to /simple/<project>/ so token-in-path prefixes survive; no query string, since
    pip and uv build the PEP 658 URL by appending ".metadata"."""
    return f"../../files/{quote(f.sha256, safe='')}/{quote(f.filename, safe='')}"


def _file_anchor(f: FileEntry) -> str:
    attrs = {"href": f"{_url(f)}#sha256={f.sha256}"}
    if f.requires_python:
        attrs["data-requires-python"] = f.requires_python
    if f.metadata_sha256:
        # PEP 714 renamed the attribute; older pip reads only data-dist-info-metadata.
        attrs["data-core-metadata"] = f"sha256={f.metadata_sha256}"
        attrs["data-dist-info-metadata"] = f"sha256={f.metadata_sha256}"
    if f.yanked:
        attrs["data-yanked"] = f.yanked_reason or ""  # PEP 592: empty = yanked without reason
    rendered = "".join(f' {key}="{escape(value)}"' for key, value in attrs.items())
    return f"<a{rendered}>{escape(f.filename)}</a><br>\n"


def _file_json(f: FileEntry) -> dict[str, Any]:
    data: dict[str, Any] = {"filename": f.filename, "url": _url(f), "hashes": {"sha256": f.sha256}}
    if f.requires_python:
        data["requires-python"] = f.requires_python
    metadata = {"sha256": f.metadata_sha256} if f.metadata_sha256 else False
    data["core-metadata"] = data["dist-info-metadata"] = metadata  # PEP 714, as in HTML
    data["size"] = f.size
    data["upload-time"] = f.upload_time
    # PEP 691: a reason must be non-empty, so a yank without one is plain true.
    data["yanked"] = (f.yanked_reason or True) if f.yanked else False
    return data


def _json(body: dict[str, Any]) -> str:
    return json.dumps({"meta": {"api-version": API_VERSION}, **body}, separators=(",", ":"))


def _html(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        f'<html><head><meta name="pypi:repository-version" content="{API_VERSION}">'
        f"<title>{escape(title)}</title></head>\n"
        f"<body><h1>{escape(title)}</h1>\n{body}</body></html>\n"
    )
