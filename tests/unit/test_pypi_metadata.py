"""repo.pypi.metadata: filenames, archive checks and core metadata, on files built here."""

from __future__ import annotations

import gzip
import io
import random
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from repo.errors import Invalid
from repo.pypi import metadata
from repo.pypi.metadata import SDIST, WHEEL, Distribution, filetype_for, read_distribution

from .builders import Member, Special, write_tar

META = b"Metadata-Version: 2.1\nName: Demo.Pkg\nVersion: 1.0\n"
WHEEL_FILE = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
WHEEL_NAME = "demo_pkg-1.0-py3-none-any.whl"
SDIST_NAME = "demo_pkg-1.0.tar.gz"
DIST_INFO = "demo_pkg-1.0.dist-info"


def wheel_entries(meta: bytes = META, dist_info: str = DIST_INFO) -> dict[str, bytes]:
    return {
        "demo_pkg/__init__.py": b"",
        f"{dist_info}/METADATA": meta,
        f"{dist_info}/WHEEL": WHEEL_FILE,
        f"{dist_info}/RECORD": b"",
    }


def make_wheel(tmp_path: Path, entries: dict[str, bytes] | None = None) -> Path:
    """A wheel at tmp_path/WHEEL_NAME holding `entries` (a good wheel if None)."""
    path = tmp_path / WHEEL_NAME
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in (wheel_entries() if entries is None else entries).items():
            zf.writestr(name, data)
    return path


def make_sdist(tmp_path: Path, members: list[Member] | None = None) -> Path:
    """A .tar.gz at tmp_path/SDIST_NAME of `members` (builders.Member)."""
    if members is None:
        members = [("demo_pkg-1.0/setup.py", b""), ("demo_pkg-1.0/PKG-INFO", META)]
    return write_tar(tmp_path / SDIST_NAME, members)


def refused(path: Path, filename: str) -> str:
    """The message read_distribution refuses the file with, checked to be one ASCII line."""
    with pytest.raises(Invalid) as caught:
        read_distribution(str(path), filename)
    message = caught.value.message
    assert message.isascii() and message.isprintable(), message
    return message


def test_good_wheel_gives_every_field(tmp_path):
    meta = (
        b"Metadata-Version: 2.4\nName: Demo.Pkg\nVersion: 1.0\nSummary: A demo \xe2\x98\x83\n"
        b"License-Expression: MIT\nAuthor: Zo\xc3\xab\nAuthor-email: zoe@example.com\n"
        b"Home-page: https://example.com\nRequires-Python: >=3.9\n"
        b"Requires-Dist: dep-b>=1\nRequires-Dist: rich; extra == 'cli'\n"
        b"Project-URL: Source, https://example.com/src\nProject-URL: Docs, https://example.com/d\n"
        b"Classifier: Programming Language :: Python :: 3\nClassifier: Typing :: Typed\n"
        b"Description-Content-Type: text/markdown\n\n# Demo\r\nlong description\n"
    )
    path = make_wheel(tmp_path, wheel_entries(meta))

    assert read_distribution(str(path), WHEEL_NAME) == Distribution(
        filename=WHEEL_NAME,
        name="Demo.Pkg",
        normalized="demo-pkg",
        version="1.0",
        filetype=WHEEL,
        requires_python=">=3.9",
        metadata=meta,
        fields={
            "metadata_version": "2.4",
            "summary": "A demo \u2603",
            "license_expression": "MIT",
            "author": "Zo\u00eb",
            "author_email": "zoe@example.com",
            "home_page": "https://example.com",
            "requires_dist": ["dep-b>=1", "rich; extra == 'cli'"],
            "classifiers": ["Programming Language :: Python :: 3", "Typing :: Typed"],
            "description_content_type": "text/markdown",
            "project_urls": ["Source, https://example.com/src", "Docs, https://example.com/d"],
        },
    )


def test_good_sdist_reads_pkg_info_after_other_members(tmp_path):
    members: list[tuple[str, bytes | str]] = [
        ("demo_pkg-1.0/LICENSE", b"MIT"),
        ("demo_pkg-1.0/src/demo_pkg/PKG-INFO", b"not this one"),
        ("demo_pkg-1.0/PKG-INFO", META + b"License: MIT\n"),
        ("demo_pkg-1.0/setup.py", b""),
    ]
    path = make_sdist(tmp_path, members)

    assert read_distribution(str(path), SDIST_NAME) == Distribution(
        filename=SDIST_NAME,
        name="Demo.Pkg",
        normalized="demo-pkg",
        version="1.0",
        filetype=SDIST,
        requires_python=None,
        metadata=None,
        fields={"metadata_version": "2.1", "license": "MIT"},
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"Requires-Python: >=3.8, <4\n", ">=3.8, <4"),
        (b"Requires-Python: \n", None),
        (b"", None),
    ],
)
def test_requires_python_is_kept_as_written(tmp_path, header, expected):
    path = make_sdist(tmp_path, [("demo_pkg-1.0/PKG-INFO", META + header)])
    assert read_distribution(str(path), SDIST_NAME).requires_python == expected


def test_wheel_version_1_0_0_matches_metadata_version_1_0(tmp_path):
    filename = "demo_pkg-1.0.0-py3-none-any.whl"
    path = tmp_path / filename
    make_wheel(tmp_path, wheel_entries(dist_info="demo_pkg-1.0.0.dist-info")).rename(path)
    dist = read_distribution(str(path), filename)
    assert (dist.normalized, dist.version) == ("demo-pkg", "1.0")


def test_sdist_with_unnormalized_name_and_version_is_accepted(tmp_path):
    path = make_sdist(tmp_path, [("Demo.Pkg-01.0/PKG-INFO", META)]).rename(
        tmp_path / "Demo.Pkg-01.0.tar.gz"
    )
    assert read_distribution(str(path), "Demo.Pkg-01.0.tar.gz").version == "1.0"


@pytest.mark.parametrize(
    ("filename", "filetype"),
    [
        ("demo_pkg-1.0-py3-none-any.whl", WHEEL),
        ("demo_pkg-1.0-1build-cp312-cp312-manylinux_2_17_x86_64.whl", WHEEL),
        ("Demo.Pkg-1.0-py2.py3-none-any.whl", WHEEL),
        ("demo_pkg-1.0.tar.gz", SDIST),
        ("demo_pkg-1.0+local.tar.gz", SDIST),
    ],
)
def test_filetype_for_names_the_kind_of_distribution(filename, filetype):
    assert filetype_for(filename) == filetype


@pytest.mark.parametrize(
    ("filename", "message"),
    [
        ("", "Invalid filename '': empty"),
        ("a/demo_pkg-1.0.tar.gz", "Invalid filename 'a/demo_pkg-1.0.tar.gz': must not contain"),
        ("..\\demo_pkg-1.0.tar.gz", "Invalid filename '..\\\\demo_pkg-1.0.tar.gz': must not"),
        ("demo\x00pkg-1.0.tar.gz", "Invalid filename 'demo\\x00pkg-1.0.tar.gz': only printable"),
        ("demo_pkg-1.0.tar.gz\r\n", "Invalid filename 'demo_pkg-1.0.tar.gz\\r\\n': only"),
        ("demo\x7fpkg-1.0.tar.gz", "Invalid filename 'demo\\x7fpkg-1.0.tar.gz': only"),
        ("demo_pkg-1.0 .tar.gz", "Invalid filename 'demo_pkg-1.0 .tar.gz': only printable"),
        ("d\u00e9mo-1.0.tar.gz", "Invalid filename 'd\\xe9mo-1.0.tar.gz': only printable"),
        (".demo_pkg-1.0.tar.gz", "Invalid filename '.demo_pkg-1.0.tar.gz': must not start"),
        ("d" * 249 + "-1.0.whl", "Invalid filename '" + "d" * 97 + "...': longer than 255"),
        ("demo_pkg-1.0.zip", "Invalid file extension: use .whl or .tar.gz"),
        ("demo_pkg-1.0.tar.bz2", "Invalid file extension: use .whl or .tar.gz"),
        ("demo_pkg-1.0-py3-none-any.WHL", "Invalid file extension: use .whl or .tar.gz"),
        ("demo_pkg-1.0.exe", "Invalid file extension: use .whl or .tar.gz"),
        ("demo_pkg-1.0-py3.whl", "Invalid filename 'demo_pkg-1.0-py3.whl': expected name-"),
        ("demo-pkg-1.0-py3-none-any.whl", "Invalid filename 'demo-pkg-1.0-py3-none-any.whl':"),
        ("demo_pkg-one-py3-none-any.whl", "Invalid filename 'demo_pkg-one-py3-none-any.whl':"),
        ("demo_pkg.tar.gz", "Invalid filename 'demo_pkg.tar.gz': expected name-version.tar.gz"),
        ("demo_pkg-x!y.tar.gz", "Invalid filename 'demo_pkg-x!y.tar.gz': expected name-"),
        # Review finding 11: packaging accepts any characters in the tags.
        ("evilpkg-1.1-py3-none-<img_src=x_onerror=alert(1)>.whl",
         "Invalid filename 'evilpkg-1.1-py3-none-<img_src=x_onerror=alert(1)>.whl': tags may"),
        ("demo_pkg-1.0-py3-none-a'ny.whl", "Invalid filename 'demo_pkg-1.0-py3-none-a\'ny.whl"),
        ('demo_pkg-1.0-1"-py3-none-any.whl', "Invalid filename 'demo_pkg-1.0-1\"-py3-none-any"),
    ],
)  # fmt: skip
def test_bad_filename_is_rejected_before_the_file_is_read(tmp_path, filename, message):
    with pytest.raises(Invalid) as caught:
        filetype_for(filename)
    assert caught.value.message.startswith(message)
    assert refused(tmp_path / "never-created", filename) == caught.value.message


def gzip_of(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        (WHEEL_NAME, b"", "Invalid distribution file: not a valid zip archive"),
        (WHEEL_NAME, b"hello, not a zip", "Invalid distribution file: not a valid zip archive"),
        (WHEEL_NAME, gzip_of(b"x"), "Invalid distribution file: not a valid zip archive"),
        (SDIST_NAME, b"", "Invalid distribution file: not a valid gzip-"),
        (SDIST_NAME, b"PK\x03\x04 not a gzip", "Invalid distribution file: not a valid gzip-"),
        (SDIST_NAME, gzip_of(b"not a tar" * 100), "Invalid distribution file: not a valid gzip-"),
        (SDIST_NAME, gzip_of(b""), "Invalid distribution file: not a valid gzip-"),
        (SDIST_NAME, gzip_of(b"\0" * 1024), "Invalid distribution file: no PKG-INFO in a"),
    ],
)
def test_unreadable_archive_is_rejected(tmp_path, filename, content, message):
    path = tmp_path / filename
    path.write_bytes(content)
    assert refused(path, filename).startswith(message)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9])
def test_truncated_sdist_is_rejected(tmp_path, keep):
    members: list[tuple[str, bytes | str]] = [
        ("demo_pkg-1.0/data.bin", random.Random(0).randbytes(100_000)),
        ("demo_pkg-1.0/PKG-INFO", META),
    ]
    data = make_sdist(tmp_path, members).read_bytes()
    path = tmp_path / SDIST_NAME
    path.write_bytes(data[: int(len(data) * keep)])
    assert refused(path, SDIST_NAME).startswith("Invalid distribution file: ")


def test_truncated_wheel_is_rejected(tmp_path):
    path = make_wheel(tmp_path)
    path.write_bytes(path.read_bytes()[:-30])
    assert refused(path, WHEEL_NAME) == "Invalid distribution file: not a valid zip archive"


def without(entries: dict[str, bytes], name: str) -> dict[str, bytes]:
    return {key: value for key, value in entries.items() if key != name}


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (without(wheel_entries(), f"{DIST_INFO}/METADATA"), f"no {DIST_INFO}/METADATA"),
        (without(wheel_entries(), f"{DIST_INFO}/WHEEL"), f"no {DIST_INFO}/WHEEL"),
        (
            {**wheel_entries(), "other-1.0.dist-info/METADATA": META},
            "expected one .dist-info directory, found 2",
        ),
        (
            {"demo_pkg/__init__.py": b"", "METADATA": META},
            "expected one .dist-info directory, found 0",
        ),
        (
            wheel_entries(dist_info="other-1.0.dist-info"),
            "'other-1.0.dist-info' does not match the filename",
        ),
        (
            wheel_entries(dist_info="demo_pkg-2.0.dist-info"),
            "'demo_pkg-2.0.dist-info' does not match the filename",
        ),
        (
            wheel_entries(dist_info="demo_pkg.dist-info"),
            "'demo_pkg.dist-info' does not match the filename",
        ),
        ({**wheel_entries(), "../evil.py": b""}, "unsafe member name '../evil.py'"),
        ({**wheel_entries(), "demo_pkg/../../x": b""}, "unsafe member name 'demo_pkg/../../x'"),
        ({**wheel_entries(), "/etc/passwd": b""}, "unsafe member name '/etc/passwd'"),
        ({**wheel_entries(), "demo_pkg\\x.py": b""}, "unsafe member name 'demo_pkg\\\\x.py'"),
        (
            {**wheel_entries(), "demo_pkg/big.bin": b"\0" * (11 * 1024 * 1024)},
            "compression ratio exceeds 50",
        ),
    ],
)
def test_malformed_wheel_is_rejected(tmp_path, entries, message):
    path = make_wheel(tmp_path, entries)
    assert refused(path, WHEEL_NAME) == f"Invalid distribution file: {message}"


def test_wheel_member_name_with_nul_is_rejected(tmp_path):
    path = make_wheel(tmp_path, {**wheel_entries(), "demo_pkg/aXb.py": b""})
    path.write_bytes(path.read_bytes().replace(b"demo_pkg/aXb.py", b"demo_pkg/a\0b.py"))
    assert refused(path, WHEEL_NAME) == (
        "Invalid distribution file: unsafe member name 'demo_pkg/a\\x00b.py'"
    )


def test_wheel_with_duplicate_entries_is_rejected(tmp_path):
    path = make_wheel(tmp_path)
    with pytest.warns(UserWarning, match="Duplicate name"):
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr(f"{DIST_INFO}/METADATA", META.replace(b"Demo.Pkg", b"evil"))
    assert refused(path, WHEEL_NAME) == (
        f"Invalid distribution file: duplicate entry '{DIST_INFO}/METADATA'"
    )


def test_wheel_with_other_compression_is_rejected(tmp_path):
    path = make_wheel(tmp_path)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("demo_pkg/data.bin", b"x", compress_type=zipfile.ZIP_BZIP2)
    assert refused(path, WHEEL_NAME) == (
        "Invalid distribution file: entry 'demo_pkg/data.bin' is not stored or deflated"
    )


def test_wheel_with_encrypted_entry_is_rejected(tmp_path):
    path = make_wheel(tmp_path, {**wheel_entries(), "demo_pkg/secret.py": b"x"})
    # zipfile cannot write encrypted entries: set bit 0 of the flags in both headers.
    data = bytearray(path.read_bytes())
    local = data.find(b"demo_pkg/secret.py") - 30
    central = data.find(b"demo_pkg/secret.py", local + 31) - 46
    assert data[local : local + 4] == b"PK\x03\x04" and data[central : central + 4] == b"PK\x01\x02"
    data[local + 6] |= 0x1
    data[central + 8] |= 0x1
    path.write_bytes(bytes(data))
    assert refused(path, WHEEL_NAME) == (
        "Invalid distribution file: entry 'demo_pkg/secret.py' is encrypted"
    )


def test_wheel_metadata_as_symlink_is_rejected(tmp_path):
    path = tmp_path / WHEEL_NAME
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in without(wheel_entries(), f"{DIST_INFO}/METADATA").items():
            zf.writestr(name, data)
        info = zipfile.ZipInfo(f"{DIST_INFO}/METADATA")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, b"../../../etc/passwd")
    assert refused(path, WHEEL_NAME) == (
        f"Invalid distribution file: member '{DIST_INFO}/METADATA' is a symlink"
    )


def test_wheel_metadata_over_16_mib_is_rejected(tmp_path):
    big = META + b"\n" + random.Random(0).randbytes(16 * 1024 * 1024)
    path = make_wheel(tmp_path, wheel_entries(big))
    assert refused(path, WHEEL_NAME) == "Invalid distribution file: METADATA is larger than 16 MiB"


def test_wheel_with_too_many_entries_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setattr(metadata, "MAX_MEMBERS", 3)
    path = make_wheel(tmp_path)
    assert refused(path, WHEEL_NAME) == "Invalid distribution file: more than 3 entries"


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([("demo_pkg-1.0/PKG-INFO", "setup.py")], "PKG-INFO is not a regular file"),
        (
            [("demo_pkg-1.0/PKG-INFO", "/etc/passwd")],
            "link 'demo_pkg-1.0/PKG-INFO' -> '/etc/passwd' points outside its top directory",
        ),
        (
            [("demo_pkg-1.0/setup.py", b""), ("other/x", b""), ("demo_pkg-1.0/PKG-INFO", META)],
            "member 'other/x' is outside the top directory",
        ),
        ([("PKG-INFO", META)], "no PKG-INFO in a single top-level directory"),
        ([("demo_pkg-1.0/setup.py", b"")], "no PKG-INFO in a single top-level directory"),
        ([("demo_pkg-1.0/src/PKG-INFO", META)], "no PKG-INFO in a single top-level directory"),
        ([("../PKG-INFO", META)], "unsafe member name '../PKG-INFO'"),
        ([("/demo_pkg-1.0/PKG-INFO", META)], "unsafe member name '/demo_pkg-1.0/PKG-INFO'"),
        ([("./PKG-INFO", META)], "member './PKG-INFO' is outside the top directory"),
        (
            [("demo_pkg-1.0/a\\b", b""), ("demo_pkg-1.0/PKG-INFO", META)],
            "unsafe member name 'demo_pkg-1.0/a\\\\b'",
        ),
        (
            [("demo_pkg-1.0/zeros", b"\0" * (11 * 1024 * 1024)), ("demo_pkg-1.0/PKG-INFO", META)],
            "compression ratio exceeds 50",
        ),
        (
            [("demo_pkg-1.0/PKG-INFO", META + b"\n" + random.Random(0).randbytes(16 * 1024**2))],
            "PKG-INFO is larger than 16 MiB",
        ),
    ],
)
def test_malformed_sdist_is_rejected(tmp_path, members, message):
    path = make_sdist(tmp_path, members)
    assert refused(path, SDIST_NAME) == f"Invalid distribution file: {message}"


# Every member is checked, PKG-INFO or not, before it or after it: pip and tarfile unpack them
# all. Each case follows a good PKG-INFO.
@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([("demo_pkg-1.0/PKG-INFO", META)], "more than one PKG-INFO"),
        ([("demo_pkg-1.0/zeros", bytes(11 * 1024 * 1024))], "compression ratio exceeds 50"),
        ([("other/x", b"")], "member 'other/x' is outside the top directory"),
        ([("demo_pkg-1.0/x/../../y", b"")], "unsafe member name 'demo_pkg-1.0/x/../../y'"),
        ([("demo_pkg-1.0/C:x", b"")], "unsafe member name 'demo_pkg-1.0/C:x'"),
        ([("demo_pkg-1.0/.. /x", b"")], "unsafe member name 'demo_pkg-1.0/.. /x'"),
        ([("demo_pkg-1.0/.../x", b"")], "unsafe member name 'demo_pkg-1.0/.../x'"),
        ([("demo_pkg-1.0/up", "..")], "link 'demo_pkg-1.0/up' -> '..' points outside its top"),
        ([("demo_pkg-1.0/a/up", "../../other")], "link 'demo_pkg-1.0/a/up' -> '../../other'"),
        ([("demo_pkg-1.0/up", "a/../../x")], "link 'demo_pkg-1.0/up' -> 'a/../../x' points"),
        # `a/..` is a/'s parent only while a is a directory: refused, though it stays inside.
        ([("demo_pkg-1.0/up", "a/..")], "link 'demo_pkg-1.0/up' -> 'a/..' points outside"),
        ([("demo_pkg-1.0/up", "C:/Windows")], "link 'demo_pkg-1.0/up' -> 'C:/Windows' points"),
        ([("demo_pkg-1.0/up", "..\\..\\x")], "link 'demo_pkg-1.0/up' -> '..\\\\..\\\\x' points"),
        ([("demo_pkg-1.0/up", "")], "link 'demo_pkg-1.0/up' -> '' points outside its top"),
        ([("demo_pkg-1.0/h", Special("hardlink", "other/x"))], "link 'demo_pkg-1.0/h' -> 'other"),
        (
            [("demo_pkg-1.0/h", Special("hardlink", "demo_pkg-1.0/../x"))],
            "link 'demo_pkg-1.0/h' -> 'demo_pkg-1.0/../x' points outside its top directory",
        ),
        (
            [("demo_pkg-1.0/a/l", "../b"), ("demo_pkg-1.0/a/l/c/d", b"")],
            "member 'demo_pkg-1.0/a/l/c/d' is below the symlink 'demo_pkg-1.0/a/l'",
        ),
        (
            [("demo_pkg-1.0/l", "b"), ("demo_pkg-1.0//./l/x", b"")],
            "member 'demo_pkg-1.0//./l/x' is below the symlink 'demo_pkg-1.0/l'",
        ),
        ([("demo_pkg-1.0/x", Special("unknown"))], "member 'demo_pkg-1.0/x' is of an unknown type"),
    ],
)  # fmt: skip
def test_sdist_members_after_pkg_info_are_checked(tmp_path, members, message):
    path = make_sdist(tmp_path, [("demo_pkg-1.0/PKG-INFO", META), *members])
    assert refused(path, SDIST_NAME).startswith(f"Invalid distribution file: {message}")


def test_sdist_with_too_many_members_after_pkg_info_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setattr(metadata, "MAX_MEMBERS", 3)
    members: list[Member] = [(f"demo_pkg-1.0/{n}", b"") for n in "abc"]
    path = make_sdist(tmp_path, [("demo_pkg-1.0/PKG-INFO", META), *members])
    assert refused(path, SDIST_NAME) == "Invalid distribution file: more than 3 members"


@pytest.mark.parametrize(
    "members",
    [
        [("demo_pkg-1.0/docs/README", "../README.md")],
        [("demo_pkg-1.0/docs/a/b", "../../src/./x.py")],
        [("demo_pkg-1.0/a", b""), ("demo_pkg-1.0/h", Special("hardlink", "./demo_pkg-1.0/a"))],
    ],
)
def test_sdist_links_inside_the_top_directory_are_accepted(tmp_path, members):
    path = make_sdist(tmp_path, [("demo_pkg-1.0/PKG-INFO", META), *members])
    assert read_distribution(str(path), SDIST_NAME).normalized == "demo-pkg"


def test_sdist_pkg_info_as_hard_link_is_rejected(tmp_path):
    path = tmp_path / SDIST_NAME
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("demo_pkg-1.0/setup.py")
        info.size = len(META)
        tar.addfile(info, io.BytesIO(META))
        link = tarfile.TarInfo("demo_pkg-1.0/PKG-INFO")
        link.type, link.linkname = tarfile.LNKTYPE, "demo_pkg-1.0/setup.py"
        tar.addfile(link)
    assert refused(path, SDIST_NAME) == "Invalid distribution file: PKG-INFO is not a regular file"


def test_sdist_with_a_huge_pax_header_is_rejected_without_reading_it(tmp_path):
    path = tmp_path / SDIST_NAME
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("demo_pkg-1.0/PKG-INFO")
        info.size = len(META)
        info.pax_headers = {"comment": "x" * (40 * 1024 * 1024)}
        tar.addfile(info, io.BytesIO(META))
    assert refused(path, SDIST_NAME) == (
        "Invalid distribution file: tar header or member too large"
    )


def test_sdist_with_too_many_members_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setattr(metadata, "MAX_MEMBERS", 3)
    members: list[tuple[str, bytes | str]] = [(f"demo_pkg-1.0/{n}", b"") for n in "abcd"]
    path = make_sdist(tmp_path, [*members, ("demo_pkg-1.0/PKG-INFO", META)])
    assert refused(path, SDIST_NAME) == "Invalid distribution file: more than 3 members"


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        (
            META.replace(b"Name: Demo.Pkg", b"Name: other"),
            "Filename 'demo_pkg-1.0-py3-none-any.whl' does not match metadata name 'other'"
            " version '1.0'",
        ),
        (
            META.replace(b"Version: 1.0", b"Version: 1.0.1"),
            "Filename 'demo_pkg-1.0-py3-none-any.whl' does not match metadata name 'Demo.Pkg'"
            " version '1.0.1'",
        ),
        (
            META.replace(b"2.1", b"2.0"),
            "Invalid metadata: metadata_version: unsupported '2.0'",
        ),
        (
            META.replace(b"2.1", b"3.0"),
            "Invalid metadata: metadata_version: unsupported '3.0'",
        ),
        (
            META.replace(b"Version: 1.0", b"Version: one point oh"),
            "Invalid metadata: version: invalid 'one point oh'",
        ),
        (
            META.replace(b"Name: Demo.Pkg", b"Name: -demo-"),
            "Invalid metadata: name: invalid project name '-demo-'",
        ),
        (
            META.replace(b"Name: Demo.Pkg", b"Name: d\xc3\xa9mo"),
            "Invalid metadata: name: invalid project name 'd\\xe9mo'",
        ),
        (META.replace(b"Name: Demo.Pkg\n", b""), "Invalid metadata: name: missing"),
        (META.replace(b"Version: 1.0\n", b""), "Invalid metadata: version: missing"),
        (META.replace(b"Metadata-Version: 2.1\n", b""), "Invalid metadata: metadata_version:"),
        (META + b"Name: evil\n", "Invalid metadata: name: repeated or malformed"),
        (
            META + b"Requires-Python: >=3\nRequires-Python: <3\n",
            "Invalid metadata: requires_python: repeated or malformed",
        ),
        (
            META + b"Requires-Python: >=three\n",
            "Invalid metadata: requires_python: invalid '>=three'",
        ),
        (META + b"Summary: caf\xe9\n", "Invalid metadata: not UTF-8"),
        (b"\xff\xfe\x00garbage", "Invalid metadata: not UTF-8"),
        (b"", "Invalid metadata: metadata_version: missing"),
    ],
)
def test_bad_metadata_is_rejected(tmp_path, meta, message):
    path = make_wheel(tmp_path, wheel_entries(meta))
    assert refused(path, WHEEL_NAME).startswith(message)


def test_sdist_name_mismatch_is_rejected(tmp_path):
    path = make_sdist(tmp_path, [("demo_pkg-1.0/PKG-INFO", META.replace(b"1.0", b"2.0"))])
    assert refused(path, SDIST_NAME) == (
        "Filename 'demo_pkg-1.0.tar.gz' does not match metadata name 'Demo.Pkg' version '2.0'"
    )
