"""`repo upload`: say what each file is (wheel, sdist, R source or binary package), then stream
it to the one upload route, `POST /api/repo/CHANNEL`, asking for a JSON answer.

The form is the one twine sends for Python files (`:action=file_upload` with a sha256 digest;
the server reads the metadata from the file) and the one curl sends for R packages
(`filetype`, and `platform`/`rversion` where a binary's `Built:` field cannot say).
httpx streams the file with a Content-Length (the server refuses a chunked upload with 411).
"""

from __future__ import annotations

import hashlib
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx
from tqdm import tqdm

from ..cran.description import BINARY, DESCRIPTION_CAP, SOURCE, parse_dcf
from ..errors import Invalid, RepoError
from .client import Api
from .target import api_path

PYTHON_ACTION = {":action": "file_upload", "protocol_version": "1"}
ARCHIVES = (".tar.gz", ".tgz", ".zip", ".tar.xz", ".tar.bz2", ".tar")
HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Upload:
    """One file and the form fields that say what it is."""

    path: Path
    family: str  # python | cran, as the API's file JSON says
    fields: dict[str, str]

    @property
    def kind(self) -> str:
        return self.fields["filetype"]


def describe(path: Path, platform: str | None = None, rversion: str | None = None) -> Upload:
    """What `path` is, from its name and, for an archive, the metadata file at its top:
    PKG-INFO (a Python sdist) or DESCRIPTION (an R package, binary when it has `Built:`)."""
    if not path.is_file():
        raise Invalid(f"{path}: no such file")
    name = path.name
    if name.endswith(".whl"):
        return _python(path, "bdist_wheel")
    if not name.endswith(ARCHIVES):
        raise Invalid(f"{name}: not a wheel, sdist or R package (.whl, .tar.gz, .tgz, .zip)")
    top = _top_metadata(path)
    if top is None:
        raise Invalid(f"{name}: has neither PKG-INFO (a Python sdist) nor DESCRIPTION (an R"
                      " package) at its top")  # fmt: skip
    if top[0] == "PKG-INFO":
        return _python(path, "sdist")
    fields = {"filetype": BINARY if "Built" in parse_dcf(top[1]) else SOURCE}
    if fields["filetype"] == BINARY:
        fields.update({k: v for k, v in (("platform", platform), ("rversion", rversion)) if v})
    return Upload(path, "cran", fields)


def _python(path: Path, filetype: str) -> Upload:
    return Upload(path, "python", {**PYTHON_ACTION, "filetype": filetype,
                                   "sha256_digest": _sha256(path)})  # fmt: skip


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _top_metadata(path: Path) -> tuple[str, bytes] | None:
    """(PKG-INFO or DESCRIPTION, its bytes) of the first such file one directory deep."""
    try:
        for name, read in _members(path):
            parts = name.split("/")
            if len(parts) == 2 and parts[1] in ("PKG-INFO", "DESCRIPTION"):
                return parts[1], read()
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as error:
        raise Invalid(f"{path.name}: not a readable archive ({error})") from None
    return None


def _members(path: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """(name, read it) of each regular file in a zip or (streamed) tar archive."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    yield info.filename, lambda i=info: archive.open(i).read(DESCRIPTION_CAP)
        return
    with tarfile.open(path, mode="r|*") as archive:
        for member in archive:
            if member.isfile():
                yield member.name, lambda m=member: archive.extractfile(m).read(DESCRIPTION_CAP)


class _Counted(httpx.SyncByteStream):
    """The multipart body as httpx renders it, reporting each chunk's size as it is sent."""

    def __init__(self, stream: httpx.SyncByteStream, advance: Callable[[int], object]):
        self._stream = stream
        self._advance = advance

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._stream:
            self._advance(len(chunk))
            yield chunk


def build_request(api: Api, channel: str, upload: Upload, handle: BinaryIO) -> httpx.Request:
    """The multipart POST of `upload` read from `handle`; httpx sizes it from the open file,
    so it goes with a Content-Length, not chunked."""
    return api.http.build_request(
        "POST", api_path("repo", channel), data=upload.fields,
        files={"content": (upload.path.name, handle, "application/octet-stream")},
    )  # fmt: skip


def send(api: Api, channel: str, upload: Upload) -> tuple[int, dict]:
    """Upload one file; (status, file JSON): 201 new, 200 identical. Raises RepoError (409
    for a file of that name with other content)."""
    with upload.path.open("rb") as handle:
        request = build_request(api, channel, upload, handle)
        size = int(request.headers["Content-Length"])
        with tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, leave=False,
                  desc=upload.path.name, file=sys.stderr,
                  disable=not sys.stderr.isatty()) as bar:  # fmt: skip
            request.stream = _Counted(request.stream, bar.update)
            response = api.send(request)
    try:
        return response.status_code, response.json()
    except ValueError:
        raise RepoError(f"The server answered {response.status_code} without JSON: is it a"
                        " repo server of this version?") from None  # fmt: skip
