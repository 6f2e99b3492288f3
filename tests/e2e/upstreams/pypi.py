"""FakePyPI: Warehouse's simple API (PEP 503, 691, 700, 714, 792; api-version 1.4) over
distributions a test built, with the files on a second port as PyPI's are on
files.pythonhosted.org."""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
import threading
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import HeaderParser
from html import escape
from pathlib import Path

from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from .faults import Fault, Listener, Request, Response, Upstream

JSON = "application/vnd.pypi.simple.v1+json"
# Warehouse's offers in its order: no Accept, */* and no match all give text/html.
OFFERS = ["text/html", "application/vnd.pypi.simple.v1+html", JSON]
PAGE_HEADERS = {"Cache-Control": "max-age=600, public", "Vary": "Accept"}
FILE_HEADERS = {"Content-Type": "application/octet-stream",
                "Cache-Control": "max-age=365000000, immutable, public"}  # fmt: skip
PAGE_PATH = re.compile(r"/simple/([^/]+)/?")


def normalize(name: str) -> str:
    """PEP 503's normalized name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class PyPIFile:
    """One published distribution, as the pages describe it."""

    filename: str
    version: str
    sha256: str
    size: int
    upload_time: datetime
    requires_python: str | None
    yanked: bool | str  # a string is the reason
    metadata_sha256: str | None  # of the `.metadata` file served beside a wheel
    path: str  # on the files server
    url: str

    @property
    def metadata_url(self) -> str:
        return self.url + ".metadata"


@dataclass
class _Project:
    name: str  # as its METADATA spells it
    serial: int = 0
    status: str = "active"
    reason: str | None = None
    files: list[PyPIFile] = field(default_factory=list)


class FakePyPI(Upstream):
    """The index on one port (`url`, `index_url`), the files on another (`files_url`); faults
    keyed by path pattern or by normalized project name reach both."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._projects: dict[str, _Project] = {}
        self._blobs: dict[str, tuple[str, bytes]] = {}  # files-server path -> (project, bytes)
        self.serial = 0  # Warehouse's journal: bumped by every change
        self.index_server = Listener(self, "index", self._page, _page_project, guarded=True)
        self.files_server = Listener(self, "files", self._file, self._file_project)
        self.listeners = [self.index_server, self.files_server]
        self.start()

    @property
    def url(self) -> str:
        return self.index_server.url

    @property
    def index_url(self) -> str:
        return self.url + "/simple/"

    @property
    def files_url(self) -> str:
        return self.files_server.url

    def add(
        self,
        dist: Path,
        upload_time: datetime | None = None,
        requires_python: str | None = None,
        yanked: bool | str = False,
    ) -> PyPIFile:
        """Publish a wheel or sdist: name and version from its filename, Requires-Python
        (unless given) from its METADATA or PKG-INFO, a `.metadata` file for a wheel."""
        content = dist.read_bytes()
        name, version = _name_version(dist.name)
        metadata = _core_metadata(dist)
        fields = HeaderParser().parsestr(metadata.decode())
        sha256 = hashlib.sha256(content).hexdigest()
        path = f"/packages/{sha256[:2]}/{sha256[2:4]}/{sha256[4:]}/{dist.name}"
        wheel = dist.name.endswith(".whl")
        file = PyPIFile(
            dist.name, version, sha256, len(content), upload_time or datetime.now(UTC),
            requires_python or fields["Requires-Python"], yanked,
            hashlib.sha256(metadata).hexdigest() if wheel else None, path, self.files_url + path,
        )  # fmt: skip
        with self._lock:
            self.serial += 1
            project = self._projects.setdefault(normalize(name), _Project(fields["Name"]))
            project.files.append(file)
            project.serial = self.serial
            self._blobs[path] = (normalize(name), content)
            if wheel:
                self._blobs[path + ".metadata"] = (normalize(name), metadata)
        return file

    def set_status(self, project: str, status: str, reason: str | None = None) -> None:
        """PEP 792: active, archived, quarantined (no files listed) or deprecated."""
        with self._lock:
            self.serial += 1
            entry = self._projects[normalize(project)]
            entry.status, entry.reason, entry.serial = status, reason, self.serial

    def remove(self, project: str) -> None:
        """Delete the project and its files: pages and files answer 404."""
        with self._lock:
            self.serial += 1
            del self._projects[normalize(project)]
            self._blobs = {p: b for p, b in self._blobs.items() if b[0] != normalize(project)}

    def files_saw_credentials(self) -> bool:
        """Whether any request to the files server carried Authorization: credentials for an
        index must never follow its links to another host (mirror.md R16)."""
        return any(r.headers["Authorization"] for r in self.log.requests(server="files"))

    def _file_project(self, path: str) -> str | None:
        with self._lock:
            return self._blobs.get(path, (None,))[0]

    def _file(self, request: Request, fault: Fault) -> Response:
        with self._lock:
            blob = self._blobs.get(request.path)
        if blob is None:
            return Response(404, b"Not Found\n")
        return Response(200, blob[1], dict(FILE_HEADERS))

    def _page(self, request: Request, fault: Fault) -> Response:
        """The root or a project page, in the format Accept asks for (unless `html_only`)."""
        accept = parse_accept_header(request.headers.get("Accept"), MIMEAccept)
        kind = "text/html" if fault.html_only else accept.best_match(OFFERS, "text/html")
        with self._lock:
            if request.path == "/simple/":
                serial = self.serial if fault.serial is None else fault.serial
                body = self._root(kind, serial)
            else:
                normalized = _page_project(request.path)
                project = self._projects.get(normalized or "")
                if project is None:
                    return Response(404, b"Not Found\n")
                if request.path != f"/simple/{normalized}/":
                    return Response(301, b"", {"Location": f"/simple/{normalized}/"})
                serial = project.serial if fault.serial is None else fault.serial
                body = _detail(normalized, project, kind, serial)
        content_type = kind if kind == JSON else f"{kind}; charset=utf-8"
        headers = {"Content-Type": content_type, "X-PyPI-Last-Serial": str(serial)}
        return Response(200, body.encode(), {**headers, **PAGE_HEADERS})

    def _root(self, kind: str, serial: int) -> str:
        """Every project but the quarantined ones, as Warehouse lists them."""
        listed = sorted((n, p) for n, p in self._projects.items() if p.status != "quarantined")
        if kind == JSON:
            projects = [{"name": p.name, "_last-serial": p.serial} for _, p in listed]
            meta = {"api-version": "1.4", "_last-serial": serial}
            return json.dumps({"meta": meta, "projects": projects})
        links = "".join(f'<a href="/simple/{n}/">{escape(p.name)}</a>\n' for n, p in listed)
        head = '<meta name="pypi:repository-version" content="1.4"><title>Simple index</title>'
        return f"<!DOCTYPE html>\n<html><head>{head}</head>\n<body>\n{links}</body></html>\n"


def _detail(normalized: str, project: _Project, kind: str, serial: int) -> str:
    """Warehouse's detail page (`packaging/utils.py`, `templates/api/simple/detail.html`)."""
    files = [] if project.status == "quarantined" else project.files
    status = {"status": project.status} | ({"reason": project.reason} if project.reason else {})
    if kind == JSON:
        return json.dumps({
            "meta": {"api-version": "1.4", "_last-serial": serial}, "name": normalized,
            "versions": list(dict.fromkeys(f.version for f in files)),  # in upload order
            "alternate-locations": [], "project-status": status,
            "files": [_json_file(f) for f in files],
        })  # fmt: skip
    meta = f'<meta name="pypi:project-status" content="{project.status}">'
    if project.reason:
        meta += f'<meta name="pypi:project-status-reason" content="{escape(project.reason)}">'
    anchors = "".join(f"    {_anchor(f)}<br />\n" for f in files)
    return ('<!DOCTYPE html>\n<html lang="en">\n  <head>\n'
            f'    <meta name="pypi:repository-version" content="1.4">\n    {meta}\n'
            f"    <title>Links for {normalized}</title>\n  </head>\n  <body>\n"
            f"    <h1>Links for {normalized}</h1>\n{anchors}  </body>\n</html>\n"
            f"<!--SERIAL {serial}-->\n")  # fmt: skip


def _json_file(file: PyPIFile) -> dict:
    # Warehouse sends False, not an absent key, when there is no metadata file (PEP 714).
    metadata = {"sha256": file.metadata_sha256} if file.metadata_sha256 else False
    return {"filename": file.filename, "url": file.url, "hashes": {"sha256": file.sha256},
            "requires-python": file.requires_python, "size": file.size,
            "upload-time": file.upload_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "yanked": file.yanked, "data-dist-info-metadata": metadata,
            "core-metadata": metadata}  # fmt: skip


def _anchor(file: PyPIFile) -> str:
    attributes = ""
    if file.requires_python:
        attributes += f' data-requires-python="{escape(file.requires_python)}"'
    if file.yanked is not False:
        attributes += f' data-yanked="{escape(file.yanked if file.yanked is not True else "")}"'
    if file.metadata_sha256:
        value = f"sha256={file.metadata_sha256}"
        attributes += f' data-dist-info-metadata="{value}" data-core-metadata="{value}"'
    return f'<a href="{file.url}#sha256={file.sha256}"{attributes}>{escape(file.filename)}</a>'


def _page_project(path: str) -> str | None:
    match = PAGE_PATH.fullmatch(path)
    return normalize(match[1]) if match else None


def _name_version(filename: str) -> tuple[str, str]:
    """From a wheel's name (PEP 427) or an sdist's (`name-version.tar.gz`)."""
    if filename.endswith(".whl"):
        name, version = filename.split("-")[:2]
        return name, version
    name, version = filename.removesuffix(".tar.gz").rsplit("-", 1)
    return name, version


def _core_metadata(dist: Path) -> bytes:
    """A wheel's `.dist-info/METADATA` (served as `.metadata`), or an sdist's PKG-INFO."""
    if dist.name.endswith(".whl"):
        with zipfile.ZipFile(dist) as wheel:
            name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
            return wheel.read(name)
    with tarfile.open(dist) as sdist:
        member = next(m for m in sdist.getmembers() if m.name.count("/") == 1
                      and m.name.endswith("/PKG-INFO"))  # fmt: skip
        return sdist.extractfile(member).read()
