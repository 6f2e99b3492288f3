"""`repo upload` tells each kind of file apart by its metadata and sends it as one sized
multipart body with the fields the server's Python or R side reads."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile

import pytest

from repo.errors import Invalid
from repo.remote import upload
from repo.remote.client import Api

DESCRIPTION = "Package: abc\nVersion: 2.1\nTitle: A\n"
BUILT = "Built: R 4.2.3; ; 2024-01-01 00:00:00 UTC; unix\n"


def tarball(path, files: dict[str, str]):
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def zipped(path, files: dict[str, str]):
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def test_a_wheel_goes_as_twine_sends_it_with_its_sha256(tmp_path):
    wheel = zipped(tmp_path / "demo-1.0-py3-none-any.whl", {"demo/__init__.py": ""})
    found = upload.describe(wheel)
    assert (found.family, found.kind) == ("python", "bdist_wheel")
    sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert found.fields == {":action": "file_upload", "protocol_version": "1",
                            "filetype": "bdist_wheel", "sha256_digest": sha256}  # fmt: skip


@pytest.mark.parametrize(
    "name, files, family, kind",
    [
        ("demo-1.0.tar.gz", {"demo-1.0/setup.py": "", "demo-1.0/PKG-INFO": "Name: demo\n"},
         "python", "sdist"),
        # PEP 625 names may look like an R file: the metadata decides.
        ("foo_2-1.0.tar.gz", {"foo_2-1.0/PKG-INFO": "Name: foo_2\n"}, "python", "sdist"),
        ("abc_2.1.tar.gz", {"abc/DESCRIPTION": DESCRIPTION, "abc/R/abc.R": ""}, "cran",
         "cran_source_package"),
        ("abc_2.1_R_x86_64-pc-linux-gnu.tar.gz", {"abc/R/abc": "", "abc/DESCRIPTION":
         DESCRIPTION + BUILT}, "cran", "cran_binary_package"),
        ("abc_2.1.tgz", {"abc/DESCRIPTION": DESCRIPTION + BUILT}, "cran", "cran_binary_package"),
    ],
)  # fmt: skip
def test_archives_are_told_apart_by_their_metadata(tmp_path, name, files, family, kind):
    found = upload.describe(tarball(tmp_path / name, files))
    assert (found.family, found.kind) == (family, kind)


def test_a_windows_zip_is_an_r_binary_with_the_fields_given(tmp_path):
    path = zipped(tmp_path / "abc_2.1.zip", {"abc/DESCRIPTION": DESCRIPTION + BUILT})
    found = upload.describe(path, platform="big-sur-arm64", rversion="4.4")
    assert found.fields == {"filetype": "cran_binary_package", "platform": "big-sur-arm64",
                            "rversion": "4.4"}  # fmt: skip


def test_a_source_package_sends_no_binary_fields(tmp_path):
    path = tarball(tmp_path / "abc_2.1.tar.gz", {"abc/DESCRIPTION": DESCRIPTION})
    assert upload.describe(path, platform="noble-x86_64").fields == {
        "filetype": "cran_source_package"
    }


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("notes.txt", b"hello", "not a wheel, sdist or R package"),
        ("broken.tar.gz", b"\x1f\x8bnot really gzip", "not a readable archive"),
    ],
)
def test_what_is_not_a_package_is_refused_before_anything_is_sent(tmp_path, name, content,
                                                                  message):  # fmt: skip
    (tmp_path / name).write_bytes(content)
    with pytest.raises(Invalid, match=message):
        upload.describe(tmp_path / name)


def test_an_archive_without_metadata_at_its_top_is_refused(tmp_path):
    path = tarball(tmp_path / "x-1.0.tar.gz", {"x-1.0/a/PKG-INFO": "", "README": ""})
    with pytest.raises(Invalid, match="neither PKG-INFO .* nor DESCRIPTION"):
        upload.describe(path)


def test_the_body_is_sized_not_chunked(tmp_path):
    wheel = zipped(tmp_path / "demo-1.0-py3-none-any.whl", {"demo/__init__.py": "x" * 100_000})
    found = upload.describe(wheel)
    with wheel.open("rb") as handle:
        request = upload.build_request(Api("http://127.0.0.1:9"), "ch", found, handle)
        body = b"".join(request.stream)
    assert "Transfer-Encoding" not in request.headers
    assert int(request.headers["Content-Length"]) == len(body)
    assert request.url.path == "/api/repo/ch" and wheel.read_bytes() in body
