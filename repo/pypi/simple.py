"""The simple index pages: PEP 503 HTML and PEP 691 JSON, the choice between them by Accept, and
the reading of an upstream's project page (a mirror's), in either format.

Pure over rows the caller has already fetched and sorted, so the routes stay thin and the exact
bytes pip and uv parse are pinned by unit tests.
"""

import functools
import json
import re
from dataclasses import dataclass
from html import escape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

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
    size: int | None  # None: an HTML upstream did not say (PEP 700 is JSON only)
    upload_time: str | None  # ISO 8601 UTC, e.g. "2026-11-26T14:23:15.123456Z"; None: unknown
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


def project_page(content_type: str, name: str, files: list[FileEntry], status: str = "active",
                 status_reason: str | None = None) -> str:  # fmt: skip
    """One project's page (name = normalized); files link to ../../files/<sha256>/<filename>.
    `status` is its PEP 792 project status, which a mirror passes on from upstream."""
    marker = {"status": status, **({"reason": status_reason} if status_reason else {})}
    if content_type == V1_JSON:
        return _json(
            {
                "name": name,
                "versions": sorted({f.version for f in files}, key=_version_order),
                "files": [_file_json(f) for f in files],
                "project-status": marker,
            }
        )
    # PEP 792's meta tags; an active project's page is left as it always was.
    tags = {"pypi:project-status": status, "pypi:project-status-reason": status_reason}
    head = "".join(
        f'<meta name="{key}" content="{escape(value)}">'
        for key, value in tags.items()
        if value and marker != {"status": "active"}
    )
    return _html(f"Links for {name}", "".join(_file_anchor(f) for f in files), head)


def _version_order(version: str) -> tuple:
    """PEP 440 order; an upstream's legacy versions ("1.0-beta") after them, by string."""
    try:
        return (0, Version(version))
    except InvalidVersion:
        return (1, version)


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
    if f.size is not None:
        data["size"] = f.size
    if f.upload_time is not None:
        # uv --exclude-newer leaves out a file without one: never invent it (mirror.md fact 3).
        data["upload-time"] = f.upload_time
    # PEP 691: a reason must be non-empty, so a yank without one is plain true.
    data["yanked"] = (f.yanked_reason or True) if f.yanked else False
    return data


def _json(body: dict[str, Any]) -> str:
    return json.dumps({"meta": {"api-version": API_VERSION}, **body}, separators=(",", ":"))


def _html(title: str, body: str, head: str = "") -> str:
    return (
        "<!DOCTYPE html>\n"
        f'<html><head><meta name="pypi:repository-version" content="{API_VERSION}">{head}'
        f"<title>{escape(title)}</title></head>\n"
        f"<body><h1>{escape(title)}</h1>\n{body}</body></html>\n"
    )


# --- an upstream's project page, read (mirror.md §5) ------------------------------------------

# PEP 527's extensions, and the .tar.bz2 sdists older projects still list; pip 26 and uv install
# no eggs or Windows installers, so those are not offered.
_DIST_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz")
# A filename that is safe in our URLs, pages and logs: what PyPI allows, with `+` and `!`.
_SAFE_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!-]{0,254}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_UPLOAD_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")  # PEP 700
_SERIAL_COMMENT = re.compile(r"\s*SERIAL\s+(\d+)\s*")
STATUSES = ("active", "archived", "quarantined", "deprecated")  # PEP 792


@dataclass(frozen=True)
class Link:
    """A file an upstream page lists, as it advertised it: nothing here is verified yet."""

    filename: str
    version: str
    url: str  # as written, maybe relative to the page
    sha256: str
    size: int | None
    upload_time: str | None
    requires_python: str | None
    yanked: bool
    yanked_reason: str | None
    core_metadata: str | None  # "sha256=<hex>"; "true": exists, hash unknown; None: none


@dataclass(frozen=True)
class Listing:
    """An upstream project page: its files, serial (None: the upstream sends none) and status."""

    name: str | None
    links: list[Link]
    serial: int | None
    status: str
    status_reason: str | None


def read_project_page(content_type: str, body: bytes, project: str) -> Listing:
    """Parse an upstream page of `project` (normalized) by the type the upstream answered with,
    never the one asked for (some upstreams answer HTML whatever Accept says). Raises ValueError.

    Only files a client of ours can use are kept: a distribution filename of this project with
    a sha256 (without one nobody could check the bytes we would serve, so such files are not
    offered), and upload-time only in PEP 700's format.
    """
    media = content_type.split(";", 1)[0].strip().lower()
    if media == V1_JSON:
        return _read_json(body, project)
    if media in (HTML, V1_HTML):
        return _read_html(body.decode("utf-8", "replace"), project)
    raise ValueError(f"an index page of type '{media or 'none'}'")


def _read_json(body: bytes, project: str) -> Listing:
    data = json.loads(body)
    meta = data.get("meta") if isinstance(data, dict) else None
    if not isinstance(meta, dict) or not str(meta.get("api-version", "")).startswith("1."):
        raise ValueError("not a PEP 691 v1 page")
    files = data.get("files") if isinstance(data.get("files"), list) else []
    status = data.get("project-status") if isinstance(data.get("project-status"), dict) else {}
    links = [_json_link(f, project) for f in files if isinstance(f, dict)]
    return Listing(
        name=_text(data.get("name")),
        links=[link for link in links if link is not None],
        serial=_count(meta.get("_last-serial")),
        status=_status(status.get("status")),
        status_reason=_text(status.get("reason")),
    )


def _json_link(f: dict, project: str) -> Link | None:
    hashes = f.get("hashes")
    yanked = f.get("yanked")
    metadata = next(
        (f[key] for key in ("core-metadata", "dist-info-metadata", "data-dist-info-metadata")
         if key in f), None,
    )  # fmt: skip
    return _link(
        project, _text(f.get("filename")), _text(f.get("url")),
        _digest(hashes.get("sha256")) if isinstance(hashes, dict) else None,
        size=_count(f.get("size")), upload_time=_text(f.get("upload-time")),
        requires_python=_text(f.get("requires-python")),
        yanked=yanked is True or bool(_text(yanked)), yanked_reason=_text(yanked),
        core_metadata=_advertised(metadata),
    )  # fmt: skip


def _read_html(body: str, project: str) -> Listing:
    reader = _AnchorReader()
    reader.feed(body)
    reader.close()
    links = []
    for attrs in reader.anchors:
        href = attrs.get("href") or ""
        fragment = urlsplit(href).fragment
        hashes = dict(part.partition("=")[::2] for part in fragment.split("&"))
        metadata = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        yanked = attrs.get("data-yanked", False)
        links.append(_link(
            project, unquote(urlsplit(href).path.rpartition("/")[2]), href.partition("#")[0],
            _digest(hashes.get("sha256")), size=None, upload_time=None,
            requires_python=attrs.get("data-requires-python") or None,
            yanked=yanked is not False, yanked_reason=_text(yanked),
            core_metadata=_advertised(metadata),
        ))  # fmt: skip
    return Listing(
        name=None,
        links=[link for link in links if link is not None],
        serial=reader.serial,
        status=_status(reader.meta.get("pypi:project-status")),
        status_reason=reader.meta.get("pypi:project-status-reason") or None,
    )


class _AnchorReader(HTMLParser):
    """The anchors' attributes, the `pypi:` meta tags and PyPI's `<!--SERIAL n-->` comment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[dict[str, str | None]] = []
        self.meta: dict[str, str] = {}
        self.serial: int | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a" and found.get("href"):
            self.anchors.append(found)
        elif tag == "meta" and (found.get("name") or "").startswith("pypi:"):
            self.meta[found["name"] or ""] = found.get("content") or ""

    def handle_comment(self, data: str) -> None:
        match = _SERIAL_COMMENT.fullmatch(data)
        if match:
            self.serial = int(match[1])


def _link(project: str, filename: str | None, url: str | None, sha256: str | None,
          **fields: Any) -> Link | None:  # fmt: skip
    """The Link, or None for a file we cannot offer (see read_project_page)."""
    if not filename or not url or sha256 is None or not _SAFE_FILENAME.fullmatch(filename):
        return None
    version = _file_version(project, filename)
    if version is None:
        return None
    if fields["upload_time"] is not None and not _UPLOAD_TIME.fullmatch(fields["upload_time"]):
        fields["upload_time"] = None
    return Link(filename=filename, version=version, url=url, sha256=sha256, **fields)


def _file_version(project: str, filename: str) -> str | None:
    """The version a distribution filename of `project` names, as written; None if it names
    another project or is no distribution. Wheels escape the name with `_`; sdists of old
    projects may keep its `-` ("foo-bar-1.0.tar.gz"), so the name is matched, not split."""
    suffix = next((s for s in _DIST_SUFFIXES if filename.endswith(s)), None)
    if suffix is None:
        return None
    parts = filename.removesuffix(suffix).split("-")
    if suffix == ".whl":
        found = len(parts) in (5, 6) and canonicalize_name(parts[0]) == project
        return parts[1] if found else None
    for cut in range(1, len(parts)):
        if canonicalize_name("-".join(parts[:cut])) == project:
            return "-".join(parts[cut:])
    return None


def _advertised(value: object) -> str | None:
    """PEP 714's core-metadata as a Link keeps it: "sha256=<hex>", or "true" for a file that
    exists with a hash unknown (or of a kind we do not check); JSON's dict or `true`, HTML's
    `sha256=<hex>` or `true`."""
    if isinstance(value, str):
        name, _, digest = value.partition("=")
        value = {name: digest}
    if isinstance(value, dict):
        digest = _digest(value.get("sha256"))
        return f"sha256={digest}" if digest else "true"
    return "true" if value is True else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _digest(value: object) -> str | None:
    text = value.lower() if isinstance(value, str) else ""
    return text if _SHA256.fullmatch(text) else None


def _status(value: object) -> str:
    """PEP 792: a status we do not know is read as active."""
    return value if value in STATUSES else "active"
