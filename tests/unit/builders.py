"""Python distributions built in memory, the form twine sends to upload one, and the checks
every refusal must pass: shared by the upload and auth tests."""

from __future__ import annotations

import base64
import bz2
import gzip
import hashlib
import io
import lzma
import os
import stat
import tarfile
import zipfile
from pathlib import Path
from typing import NamedTuple

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from repo.db import get_db

META = b"Metadata-Version: 2.1\nName: Demo.Pkg\nVersion: 1.0\nSummary: A demo\n"
WHEEL_NAME = "demo_pkg-1.0-py3-none-any.whl"
SDIST_NAME = "demo_pkg-1.0.tar.gz"
WHEEL_FILE = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
CHALLENGE = 'Basic realm="repo"'


class Special(NamedTuple):
    """A member that is neither a file nor a symlink: a hard link to `target` (named from the
    archive's root, as tar does), or a device, fifo or socket."""

    kind: str  # one of SPECIAL_TYPES
    target: str = ""


# kind -> (tar member type, unix file type in a zip's external_attr); tar has no sockets.
SPECIAL_TYPES = {
    "hardlink": (tarfile.LNKTYPE, None),
    "chardev": (tarfile.CHRTYPE, stat.S_IFCHR),
    "blockdev": (tarfile.BLKTYPE, stat.S_IFBLK),
    "fifo": (tarfile.FIFOTYPE, stat.S_IFIFO),
    "socket": (None, stat.S_IFSOCK),
    "unknown": (b"Z", None),  # no tar type; tarfile unpacks it as a regular file
}
# A member of a built archive: bytes are file contents, a str is a symlink target.
Member = tuple[str, bytes | str | Special]
_COMPRESSORS = {"w:gz": lambda data: gzip.compress(data, mtime=0), "w:xz": lzma.compress,
                "w:bz2": bz2.compress, "w": bytes}  # fmt: skip


def zip_bytes(members: list[Member]) -> bytes:
    """A zip of `members`, the same bytes for the same members."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, content in members:
            # A fixed date: the same arguments always give the same bytes (and sha256).
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            if isinstance(content, str):  # Info-ZIP keeps a symlink's target as its data
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            elif isinstance(content, Special):
                mode = SPECIAL_TYPES[content.kind][1]
                assert mode is not None, f"a zip has no {content.kind}"
                info.external_attr = (mode | 0o644) << 16
            data = b"" if isinstance(content, Special) else content
            zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def wheel(
    meta: bytes = META, dist_info: str = "demo_pkg-1.0.dist-info", code: bytes = b"",
    extra: tuple[Member, ...] = (),
) -> bytes:  # fmt: skip
    """A wheel whose METADATA is `meta`; `code` changes the content but not the metadata;
    `extra` members come last."""
    return zip_bytes([("demo_pkg/__init__.py", code), (f"{dist_info}/METADATA", meta),
                      (f"{dist_info}/WHEEL", WHEEL_FILE), (f"{dist_info}/RECORD", b""),
                      *extra])  # fmt: skip


def tar_bytes(members: list[Member], mode: str = "w:gz") -> bytes:
    """A tar of `members` compressed as tarfile's `mode` says, the same bytes for the same
    members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
            elif isinstance(content, Special):
                kind = SPECIAL_TYPES[content.kind][0]
                assert kind is not None, f"a tar has no {content.kind}"
                info.type, info.linkname = kind, content.target
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return _COMPRESSORS[mode](buffer.getvalue())


def write_tar(path: Path, members: list[Member], mode: str = "w:gz") -> Path:
    """The tar_bytes of `members` written at `path`."""
    path.write_bytes(tar_bytes(members, mode))
    return path


def tar_gz(members: dict[str, bytes]) -> bytes:
    """A gzip-compressed tar of regular files, the same bytes for the same members."""
    return tar_bytes(list(members.items()))


def sdist(meta: bytes = META, root: str = "demo_pkg-1.0") -> bytes:
    return tar_gz({f"{root}/setup.py": b"", f"{root}/PKG-INFO": meta})


R_DESCRIPTION = b"Package: abc\nVersion: 2.1\nTitle: Test\nLicense: MIT\nDepends: R (>= 3.5.0)\n"
R_SOURCE_NAME = "abc_2.1.tar.gz"


def r_source(description: bytes = R_DESCRIPTION, root: str = "abc") -> bytes:
    """An R source package as `R CMD build` lays it out (DESCRIPTION first)."""
    return tar_gz({f"{root}/DESCRIPTION": description, f"{root}/R/abc.R": b"f <- 1\n"})


def r_form(dist: bytes | None = None, filename: str = R_SOURCE_NAME, **fields) -> dict:
    """What `curl -F filetype=cran_source_package -F content=@FILE` sends; None leaves a
    field out."""
    content = r_source() if dist is None else dist
    form = {"filetype": "cran_source_package", "content": (io.BytesIO(content), filename)}
    form.update(fields)
    return {key: value for key, value in form.items() if value is not None}


def twine_form(dist: bytes | None = None, filename: str = WHEEL_NAME, **fields) -> dict:
    """The multipart form twine 7 sends for the file `dist` (a good wheel if None); a field
    given as None is left out, `content=None` included."""
    content = wheel() if dist is None else dist
    form = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.1",
        "name": "Demo.Pkg",
        "version": "1.0",
        "filetype": "sdist" if filename.endswith(".tar.gz") else "bdist_wheel",
        "pyversion": "source" if filename.endswith(".tar.gz") else "py3",
        "md5_digest": hashlib.md5(content).hexdigest(),
        "sha256_digest": hashlib.sha256(content).hexdigest(),
        "blake2_256_digest": hashlib.blake2b(content, digest_size=32).hexdigest(),
        "content": (io.BytesIO(content), filename),
    }
    form.update(fields)
    return {key: value for key, value in form.items() if value is not None}


def basic(user: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {encoded}"}


def token_auth(token: str) -> dict[str, str]:
    """What twine sends with `-u TOKEN -p x-auth-token`."""
    return basic(token, "x-auth-token")


def mistyped(secret: str) -> str:
    """The secret with its last character changed, so it is never the secret itself (a random
    secret ends in any given letter one time in sixty-two)."""
    return secret[:-1] + ("y" if secret.endswith("x") else "x")


def send(client: FlaskClient, method: str, url: str, **options) -> TestResponse:
    """The response, read and closed: closing releases the file a download streams from and
    the temporary file the test client spools a large request body into."""
    with client.open(url, method=method, **options) as response:
        response.get_data()
    # werkzeug 3.1's client closes a spooled body only when it was told to follow redirects.
    response.request.input_stream.close()
    return response


def refusal(response: TestResponse) -> str:
    """The message of a refusal, checked to be the same one ASCII line in the reason phrase
    and the text body."""
    assert 400 <= response.status_code < 500, response.status
    body = response.get_data(as_text=True)
    message = body.removesuffix("\n")
    assert body == message + "\n" and "\n" not in message, body
    assert message.isascii() and message.isprintable() and message, body
    assert response.status == f"{response.status_code} {message}"
    assert response.mimetype == "text/plain"
    return message


def stored(app: Flask) -> dict[str, object]:
    """What an upload can leave behind: rows, committed blobs, and files in the blob tmp dir."""
    db = get_db()
    store = app.extensions["blobs"]
    return {
        "files": db.execute("SELECT count(*) FROM files").fetchone()[0],
        "packages": db.execute("SELECT count(*) FROM packages").fetchone()[0],
        "blobs": sorted(blob.sha256 for blob in store.listing()),
        "tmp": sorted(os.listdir(store.tmp_dir)),
    }


def demo_wheel(version: str) -> tuple[bytes, str]:
    """A wheel of Demo.Pkg at `version` and its file name, for a test that needs a file no
    other upload has sent."""
    meta = META.replace(b"Version: 1.0", f"Version: {version}".encode())
    return wheel(meta, f"demo_pkg-{version}.dist-info"), f"demo_pkg-{version}-py3-none-any.whl"


def r_description(package: str = "abc", version: str = "2.1", built: str | None = None) -> bytes:
    """R_DESCRIPTION for `package` at `version`, with a `Built:` field when `built` is given
    (what R CMD INSTALL --build adds: "R 4.4.1; x86_64-w64-mingw32; DATE; windows")."""
    description = R_DESCRIPTION.replace(b"Package: abc", f"Package: {package}".encode())
    description = description.replace(b"Version: 2.1", f"Version: {version}".encode())
    return description + (f"Built: {built}\n".encode() if built else b"")


def r_source_of(package: str, version: str) -> tuple[bytes, str]:
    """An R source package `package` at `version` and the file name R CMD build gives it."""
    return r_source(r_description(package, version), root=package), f"{package}_{version}.tar.gz"


def r_binary(built: str, zipped: bool = False) -> bytes:
    """abc 2.1 as a binary package built as `built` says: a zip (Windows) or a gzip-compressed
    tar (macOS, Linux), with DESCRIPTION first as R CMD INSTALL --build writes it."""
    members = {"abc/DESCRIPTION": r_description(built=built), "abc/R/abc": b""}
    return zip_bytes(list(members.items())) if zipped else tar_gz(members)
