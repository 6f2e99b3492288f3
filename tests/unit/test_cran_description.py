"""repo.cran.description: DESCRIPTION parsing, hostile archives and binary placement, on archives
built here and on the real fixtures built by R."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import random
import shutil
import stat
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from repo.cran import description
from repo.cran.description import (
    BINARY,
    SOURCE,
    Built,
    RPackage,
    parse_dcf,
    placement,
    read_package,
    version_key,
)
from repo.errors import Invalid

from .builders import Member, Special, r_form, send, stored, write_tar, zip_bytes

FIXTURES = Path(__file__).parents[1] / "fixtures" / "r"
DESC = b"Package: abc\nVersion: 2.1\nTitle: A test\nLicense: MIT\n"
LINUX = "R 4.2.2; x86_64-pc-linux-gnu; 2026-11-23 22:54:28 UTC; unix"
PURE = "R 4.2.2; ; 2026-11-23 22:54:27 UTC; unix"
BUILT_DESC = DESC + f"Built: {LINUX}\n".encode()
HUGE = b"X: " + b"x" * 256 * 1024 + b"\n"


def make_tar(tmp_path: Path, members: list[Member] | None = None, mode: str = "w:gz") -> Path:
    """An archive at tmp_path/upload.bin (the name never matters) holding `members`."""
    chosen = [("abc/DESCRIPTION", DESC)] if members is None else members
    return write_tar(tmp_path / "upload.bin", chosen, mode)


def make_zip(tmp_path: Path, entries: dict[str, bytes]) -> Path:
    path = tmp_path / "upload.bin"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def refused(path: Path, filetype: str = SOURCE) -> str:
    """The message read_package refuses the file with, checked to be one ASCII line."""
    with pytest.raises(Invalid) as caught:
        read_package(str(path), filetype)
    message = caught.value.message
    assert message.isascii() and message.isprintable(), message
    return message


def invalid(call, *args) -> str:
    with pytest.raises(Invalid) as caught:
        call(*args)
    return caught.value.message


# DCF


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"Package: abc\nVersion:1.0\n", {"Package": "abc", "Version": "1.0"}),
        (b"Package: abc\r\nTitle: x\r\n", {"Package": "abc", "Title": "x"}),
        (b"A: one\nB: two\nA: three\n", {"A": "three", "B": "two"}),
        (b"\n\nA: x\n\n  \n", {"A": "x"}),
        (b"A:\nB:   \n", {"A": "", "B": ""}),
        (b"A: x: y\n", {"A": "x: y"}),
        (b"D: one  two \n    three\n\t.\n  four  \n", {"D": "one  two\nthree\n\nfour"}),
        (b"A: x\r\n  y\r\n", {"A": "x\ny"}),
        (b"A: x\n .\n", {"A": "x\n"}),
        (
            b"Authors@R: person()\nConfig/testthat/edition: 3\nX-CRAN_x.y: 1\n",
            {"Authors@R": "person()", "Config/testthat/edition": "3", "X-CRAN_x.y": "1"},
        ),
        (b"", {}),
    ],
)  # fmt: skip
def test_parse_dcf_reads_like_read_dcf(data, expected):
    assert parse_dcf(data) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("A: caf\u00e9\nEncoding: latin1\n".encode("latin-1"), "caf\u00e9"),
        ("A: caf\u00e9\nEncoding: latin-1\n".encode("latin-1"), "caf\u00e9"),
        ("Encoding: ISO-8859-1\nA: caf\u00e9\n".encode("latin-1"), "caf\u00e9"),
        ("A: caf\u00e9\nEncoding: UTF-8\n".encode(), "caf\u00e9"),
        ("A: caf\u00e9\nEncoding: utf8\n".encode(), "caf\u00e9"),
        ("A: caf\u00e9 \u2713\n".encode(), "caf\u00e9 \u2713"),
        (b"A: cafe\nEncoding: latin2\n", "cafe"),
    ],
)
def test_parse_dcf_decodes_by_the_encoding_field(data, expected):
    assert parse_dcf(data)["A"] == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("A: caf\u00e9\n".encode("latin-1"), "not UTF-8 and no Encoding field"),
        ("A: \u00e9\nEncoding: UTF-8\n".encode("latin-1"), "not valid UTF-8 (Encoding: UTF-8)"),
        ("A: \u00e9\nEncoding: latin2\n".encode("latin-1"), "Encoding 'latin2' is not supported"),
        (b"# a comment\nA: x\n", "line 1 is malformed"),
        (b"A: x\n# a comment\n", "line 2 is malformed"),
        (b"  indented: x\nA: x\n", "line 1 is malformed"),
        (b"A: x\nno colon here\n", "line 2 is malformed"),
        (b"A: x\nBad Field: y\n", "line 2 is malformed"),
        (b"A: x\n: y\n", "line 2 is malformed"),
        (b"A: x\n\n  y\n", "line 3 is malformed"),
        (b"A: x\n\nB: y\n", "more than one record"),
        (b"A: x\n \t \nB: y\n", "more than one record"),
        (b"A: x\r\n\r\nB: y\r\n", "more than one record"),
    ],
)  # fmt: skip
def test_malformed_dcf_is_rejected(data, message):
    assert invalid(parse_dcf, data) == f"Invalid DESCRIPTION: {message}"


def test_version_key_orders_like_package_version():
    assert version_key("1.10") > version_key("1.9")
    assert version_key("0.01") == version_key("0.1")
    assert version_key("1.2-3.4") == version_key("1.2.3.4")
    assert version_key("2.0") < version_key("2.0.1") < version_key("2.1")
    assert sorted(["1.10", "1.9", "1.9-1", "0.99"], key=version_key) == [
        "0.99",
        "1.9",
        "1.9-1",
        "1.10",
    ]


# DESCRIPTION validation


@pytest.mark.parametrize(
    ("package", "version"),
    [("abc", "2.1"), ("a.b.c2", "0.1-1"), ("A1", "1.2.3-4"), ("abc", "10.0.0.1")],
)
def test_valid_package_and_version_are_kept_verbatim(tmp_path, package, version):
    data = f"Package: {package}\nVersion: {version}\n".encode()
    path = make_tar(tmp_path, [(f"{package}/DESCRIPTION", data)])
    read = read_package(str(path), SOURCE)
    assert (read.package, read.version) == (package, version)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"Version: 1.0\n", "Package: missing"),
        (b"Package: abc\n", "Version: missing"),
        (b"Package: a\nVersion: 1.0\n", "Package: invalid 'a'"),
        (b"Package: 1abc\nVersion: 1.0\n", "Package: invalid '1abc'"),
        (b"Package: abc.\nVersion: 1.0\n", "Package: invalid 'abc.'"),
        (b"Package: a_bc\nVersion: 1.0\n", "Package: invalid 'a_bc'"),
        (b"Package: a-bc\nVersion: 1.0\n", "Package: invalid 'a-bc'"),
        ("Package: ab\u00e7\nVersion: 1.0\n".encode(), "Package: invalid 'ab\\xe7'"),
        (b"Package: abc\nVersion: 1\n", "Version: invalid '1'"),
        (b"Package: abc\nVersion: 1.0a\n", "Version: invalid '1.0a'"),
        (b"Package: abc\nVersion: 1..0\n", "Version: invalid '1..0'"),
        (b"Package: abc\nVersion: 1.0-\n", "Version: invalid '1.0-'"),
        (b"Package: abc\nVersion: v1.0\n", "Version: invalid 'v1.0'"),
        (b"Package: abc\nVersion: \n", "Version: invalid ''"),
    ],
)
def test_bad_package_or_version_is_rejected(tmp_path, data, message):
    path = make_tar(tmp_path, [("abc/DESCRIPTION", data)])
    assert refused(path) == f"Invalid DESCRIPTION: {message}"


# Archives


@pytest.mark.parametrize(
    ("mode", "container"),
    [("w:gz", "tar.gz"), ("w:xz", "tar.xz"), ("w:bz2", "tar.bz2"), ("w", "tar")],
)
def test_container_is_detected_by_magic_bytes(tmp_path, mode, container):
    path = make_tar(tmp_path, [("abc/R/abc.R", b""), ("abc/DESCRIPTION", DESC)], mode)
    assert read_package(str(path), SOURCE) == RPackage(
        package="abc",
        version="2.1",
        fields={"Package": "abc", "Version": "2.1", "Title": "A test", "License": "MIT"},
        container=container,
        needs_compilation=False,
        built=None,
    )


def test_multi_member_gzip_is_read_whole(tmp_path):
    """gzip allows several members back to back; the tar may run across them."""
    with tarfile.open(tmp_path / "plain.tar", "w") as tar:
        for name, data in [("abc/R/abc.R", b"f <- 1\n" * 500), ("abc/DESCRIPTION", DESC)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    plain = (tmp_path / "plain.tar").read_bytes()
    path = tmp_path / "upload.bin"
    path.write_bytes(gzip.compress(plain[:1000]) + gzip.compress(plain[1000:]))
    assert read_package(str(path), SOURCE).container == "tar.gz"


def test_zip_binary_is_read_from_the_central_directory(tmp_path):
    built = b"Built: R 4.3.2; x86_64-w64-mingw32; 2023-11-01 10:00:00 UTC; windows\n"
    path = make_zip(tmp_path, {"abc/": b"", "abc/DESCRIPTION": DESC + built, "abc/MD5": b""})
    read = read_package(str(path), BINARY)
    assert (read.container, read.package, read.built) == (
        "zip",
        "abc",
        Built("4.3.2", "4.3", "x86_64-w64-mingw32", "windows"),
    )


@pytest.mark.parametrize(
    ("members", "needs"),
    [
        ([("abc/src/abc.c", b"")], True),
        ([("abc/src", b""), ("abc/R/src.R", b"")], True),
        ([("abc/R/abc.R", b""), ("abc/inst/src/x.c", b"")], False),
    ],
)
def test_needs_compilation_follows_src_when_description_does_not_say(tmp_path, members, needs):
    path = make_tar(tmp_path, [*members, ("abc/DESCRIPTION", DESC)])
    assert read_package(str(path), SOURCE).needs_compilation is needs


@pytest.mark.parametrize(("value", "needs"), [("yes", True), ("no", False)])
def test_needs_compilation_field_wins_over_src(tmp_path, value, needs):
    data = DESC + f"NeedsCompilation: {value}\n".encode()
    path = make_tar(tmp_path, [("abc/src/abc.c", b""), ("abc/DESCRIPTION", data)])
    assert read_package(str(path), SOURCE).needs_compilation is needs


def test_hand_made_tgz_with_dot_prefix_and_macos_litter_is_accepted(tmp_path):
    path = tmp_path / "upload.bin"
    with tarfile.open(path, "w:gz") as tar:  # as `tar czf x.tgz .` on a Mac writes it
        for name, data in [
            ("./", None),
            ("./abc/", None),
            ("./abc/R/abc.R", b""),
            ("./abc/._DESCRIPTION", b"\0\5\x16\7"),
            ("__MACOSX/abc/._R", b""),
            ("./abc/DESCRIPTION", DESC),
        ]:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
            info.size = len(data or b"")
            tar.addfile(info, io.BytesIO(data or b""))
    with tarfile.open(path) as tar:
        assert tar.getnames()[:2] == [".", "./abc"]
    assert read_package(str(path), SOURCE).package == "abc"


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([("../abc/DESCRIPTION", DESC)], "unsafe member name '../abc/DESCRIPTION'"),
        ([("abc/../../x", b""), ("abc/DESCRIPTION", DESC)], "unsafe member name 'abc/../../x'"),
        ([("/abc/DESCRIPTION", DESC)], "unsafe member name '/abc/DESCRIPTION'"),
        ([("abc\\DESCRIPTION", DESC)], "unsafe member name 'abc\\\\DESCRIPTION'"),
        (
            [("abc/DESCRIPTION", "/etc/passwd")],
            "link 'abc/DESCRIPTION' -> '/etc/passwd' points outside its top directory",
        ),
        ([("abc/R/x", DESC), ("abc/DESCRIPTION", "R/x")], "DESCRIPTION is not a regular file"),
        ([("abc/DESCRIPTION", DESC)] * 2, "more than one DESCRIPTION"),
        ([("abc/DESCRIPTION", DESC), ("./abc/DESCRIPTION", DESC)], "more than one DESCRIPTION"),
        (
            [("abc/DESCRIPTION", DESC + HUGE)],
            "DESCRIPTION is larger than 256 KiB",
        ),
        ([("abc/DESCRIPTION", DESC), ("evil/x", b"")], "member 'evil/x' is outside the top"),
        ([("abc/DESCRIPTION", DESC), ("README", b"")], "member 'README' is outside the top"),
        ([("./DESCRIPTION", DESC)], "no DESCRIPTION in a single top-level directory"),
        ([("abc/R/abc.R", b"")], "no DESCRIPTION in a single top-level directory"),
        ([("abc/inst/DESCRIPTION", DESC)], "no DESCRIPTION in a single top-level directory"),
        ([("DESCRIPTION", DESC)], "no DESCRIPTION in a single top-level directory"),
        ([], "no DESCRIPTION in a single top-level directory"),
        ([("abcd/DESCRIPTION", DESC)], "top directory 'abcd' is not the package name 'abc'"),
    ],
)
def test_hostile_tar_is_rejected(tmp_path, members, message):
    assert refused(make_tar(tmp_path, members)).startswith(f"Invalid R package: {message}")


# R's internal untar() follows a symlink out of its folder, and unpacks the members the scan
# skips (AppleDouble files) too. Each case follows a good DESCRIPTION.
@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([("abc/evil", "/tmp"), ("abc/evil/pwned", b"")], "link 'abc/evil' -> '/tmp' points"),
        ([("abc/up", "../../../../etc")], "link 'abc/up' -> '../../../../etc' points outside"),
        (
            [("abc/evil", "R"), ("abc/evil/pwned", b"")],
            "member 'abc/evil/pwned' is below the symlink 'abc/evil'",
        ),
        (
            [("./abc/evil", "R"), ("abc/evil/pwned", b"")],
            "member 'abc/evil/pwned' is below the symlink 'abc/evil'",
        ),
        (
            [("abc/R", "."), ("abc/R/sub", "x"), ("abc/R/sub/y", b"")],
            "member 'abc/R/sub' is below the symlink 'abc/R'",
        ),
        ([("__MACOSX/abc/._x", "/etc")], "link '__MACOSX/abc/._x' -> '/etc' points outside"),
        ([("abc/._R", Special("chardev"))], "member 'abc/._R' is a character device"),
        ([("abc/h", Special("hardlink", "/etc/passwd"))], "link 'abc/h' -> '/etc/passwd'"),
        ([("abc/h", Special("hardlink", "abcd/x"))], "link 'abc/h' -> 'abcd/x' points outside"),
        ([("abc/R/C:", b"")], "unsafe member name 'abc/R/C:'"),
    ],
)
def test_tar_members_unsafe_to_unpack_are_rejected(tmp_path, members, message):
    path = make_tar(tmp_path, [("abc/DESCRIPTION", DESC), *members])
    assert refused(path).startswith(f"Invalid R package: {message}")


def test_symlink_as_the_top_directory_is_rejected(tmp_path):
    path = make_tar(tmp_path, [("abc", "../x"), ("abc/DESCRIPTION", DESC)])
    assert (
        refused(path) == "Invalid R package: link 'abc' -> '../x' points outside its top directory"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (Special("chardev"), "is a character device"),
        (Special("blockdev"), "is a block device"),
        (Special("fifo"), "is a fifo"),
        (Special("socket"), "is a socket"),
        ("R", "is a symlink"),
    ],
)
def test_zip_entry_that_is_not_a_file_is_rejected(tmp_path, content, message):
    path = tmp_path / "upload.bin"
    path.write_bytes(zip_bytes([("abc/DESCRIPTION", BUILT_DESC), ("abc/inst/x", content)]))
    assert refused(path, BINARY) == f"Invalid R package: member 'abc/inst/x' {message}"


def test_description_as_hard_link_is_rejected(tmp_path):
    path = make_tar(tmp_path, [("abc/R/x", DESC)])
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("abc/R/x")
        info.size = len(DESC)
        tar.addfile(info, io.BytesIO(DESC))
        link = tarfile.TarInfo("abc/DESCRIPTION")
        link.type, link.linkname = tarfile.LNKTYPE, "abc/R/x"
        tar.addfile(link)
    assert refused(path) == "Invalid R package: DESCRIPTION is not a regular file"


def test_tar_bomb_after_description_is_rejected(tmp_path):
    """The scan goes on past DESCRIPTION (a second one may follow), so it is bounded."""
    zeros = bytes(51 * 1024 * 1024)
    path = make_tar(tmp_path, [("abc/DESCRIPTION", DESC), ("abc/zeros", zeros)])
    assert path.stat().st_size < 100_000
    assert refused(path) == f"Invalid R package: unpacks to more than {50 * 1024 * 1024} bytes"


def test_tar_with_a_huge_pax_header_is_rejected_without_reading_it(tmp_path):
    path = tmp_path / "upload.bin"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("abc/DESCRIPTION")
        info.size = len(DESC)
        info.pax_headers = {"comment": "x" * (2 * 1024 * 1024)}
        tar.addfile(info, io.BytesIO(DESC))
    assert refused(path) == "Invalid R package: tar header or member too large"


def test_tar_with_too_many_members_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setattr(description, "MAX_MEMBERS", 3)
    members: list[Member] = [(f"abc/{n}", b"") for n in "wxyz"]
    path = make_tar(tmp_path, [("abc/DESCRIPTION", DESC), *members])
    assert refused(path) == "Invalid R package: more than 3 members"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a tar or zip archive"),
        (b"hello, not an archive at all", "not a tar or zip archive"),
        (random.Random(1).randbytes(5000), "not a tar or zip archive"),
        (gzip.compress(b"not a tar" * 100), "not a valid tar.gz archive"),
        (gzip.compress(b""), "not a valid tar.gz archive"),
        (lzma.compress(b"not a tar" * 100), "not a valid tar.xz archive"),
        (bz2.compress(b"not a tar" * 100), "not a valid tar.bz2 archive"),
        (b"\x1f\x8b not really gzip", "not a valid tar.gz archive"),
        (b"\xfd7zXZ\x00 not really xz", "not a valid tar.xz archive"),
        (b"BZh9 not really bzip2", "not a valid tar.bz2 archive"),
        (b"PK\x03\x04 not really a zip", "not a valid zip archive"),
        (gzip.compress(bytes(1024)), "no DESCRIPTION in a single top-level directory"),
    ],
)
def test_not_an_archive_is_rejected(tmp_path, content, message):
    path = tmp_path / "upload.bin"
    path.write_bytes(content)
    assert refused(path) == f"Invalid R package: {message}"


@pytest.mark.parametrize("mode", ["w:gz", "w:xz", "w:bz2"])
@pytest.mark.parametrize("keep", [0.05, 0.5, 0.95])
def test_truncated_archive_is_rejected(tmp_path, mode, keep):
    members: list[Member] = [
        ("abc/DESCRIPTION", DESC),
        ("abc/data.bin", random.Random(0).randbytes(50_000)),
    ]
    data = make_tar(tmp_path, members, mode).read_bytes()
    path = tmp_path / "upload.bin"
    path.write_bytes(data[: int(len(data) * keep)])
    assert refused(path).startswith("Invalid R package: ")


def encrypt(path: Path, name: str) -> None:
    """zipfile cannot write encrypted entries: set bit 0 of the flags in both headers."""
    data = bytearray(path.read_bytes())
    local = data.find(name.encode()) - 30
    central = data.find(name.encode(), local + 31) - 46
    assert data[local : local + 4] == b"PK\x03\x04" and data[central : central + 4] == b"PK\x01\x02"
    data[local + 6] |= 0x1
    data[central + 8] |= 0x1
    path.write_bytes(bytes(data))


def test_zip_with_encrypted_entry_is_rejected(tmp_path):
    path = make_zip(tmp_path, {"abc/DESCRIPTION": BUILT_DESC, "abc/secret": b"x"})
    encrypt(path, "abc/secret")
    assert refused(path, BINARY) == "Invalid R package: entry 'abc/secret' is encrypted"


def test_zip_with_duplicate_entries_is_rejected(tmp_path):
    path = make_zip(tmp_path, {"abc/DESCRIPTION": BUILT_DESC})
    with pytest.warns(UserWarning, match="Duplicate name"):
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr("abc/DESCRIPTION", BUILT_DESC.replace(b"2.1", b"9.9"))
    assert refused(path, BINARY) == "Invalid R package: duplicate entry 'abc/DESCRIPTION'"


def test_zip_description_as_symlink_is_rejected(tmp_path):
    path = tmp_path / "upload.bin"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("abc/DESCRIPTION")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, b"../../etc/passwd")
    assert refused(path, BINARY) == "Invalid R package: member 'abc/DESCRIPTION' is a symlink"


def test_zip_member_name_with_nul_is_rejected(tmp_path):
    path = make_zip(tmp_path, {"abc/DESCRIPTION": BUILT_DESC, "abc/aXb": b""})
    path.write_bytes(path.read_bytes().replace(b"abc/aXb", b"abc/a\0b"))
    assert refused(path, BINARY) == "Invalid R package: unsafe member name 'abc/a\\x00b'"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"abc/DESCRIPTION": BUILT_DESC + HUGE}, "DESCRIPTION is larger than 256 KiB"),
        ({"../abc/DESCRIPTION": BUILT_DESC}, "unsafe member name '../abc/DESCRIPTION'"),
        ({"/abc/DESCRIPTION": BUILT_DESC}, "unsafe member name '/abc/DESCRIPTION'"),
        ({"abc\\DESCRIPTION": BUILT_DESC}, "unsafe member name 'abc\\\\DESCRIPTION'"),
        ({"abc/DESCRIPTION": BUILT_DESC, "./abc/DESCRIPTION": b""}, "more than one DESCRIPTION"),
        ({"abc/DESCRIPTION": BUILT_DESC, "evil/x": b""}, "member 'evil/x' is outside the top"),
        ({"abc/DESCRIPTION/": b""}, "DESCRIPTION is not a regular file"),
        ({"abc/R/x": b""}, "no DESCRIPTION in a single top-level directory"),
        ({"abcd/DESCRIPTION": BUILT_DESC}, "top directory 'abcd' is not the package name 'abc'"),
    ],
)  # fmt: skip
def test_hostile_zip_is_rejected(tmp_path, entries, message):
    assert refused(make_zip(tmp_path, entries), BINARY).startswith(f"Invalid R package: {message}")


# Source or binary


@pytest.mark.parametrize(
    ("data", "filetype", "message"),
    [
        (
            BUILT_DESC,
            SOURCE,
            "Invalid R package: this is a binary package (it has a Built field);"
            " upload it as cran_binary_package",
        ),
        (
            DESC,
            BINARY,
            "Invalid R package: not a binary package (no Built field);"
            " upload it as cran_source_package",
        ),
        (DESC + b"Built: R 4.2; ; x; unix\n", BINARY, "Invalid DESCRIPTION: Built: malformed"),
        (DESC + b"Built: R 4.2.2; ; x; macos\n", BINARY, "Invalid DESCRIPTION: Built: malformed"),
        (DESC + b"Built: 4.2.2; ; x; unix\n", BINARY, "Invalid DESCRIPTION: Built: malformed"),
        (DESC + b"Built: R 4.2.2; x86_64-pc-linux-gnu\n", BINARY, "Invalid DESCRIPTION: Built:"),
        (DESC + b"Built: R 4.100.0; ; x; unix\n", BINARY, "Invalid DESCRIPTION: Built: malformed"),
        (DESC + b"Built: R 100.1.0; ; x; unix\n", BINARY, "Invalid DESCRIPTION: Built: malformed"),
    ],
)
def test_source_and_binary_are_not_confused(tmp_path, data, filetype, message):
    path = make_tar(tmp_path, [("abc/DESCRIPTION", data)])
    assert refused(path, filetype).startswith(message)


@pytest.mark.parametrize(
    ("text", "built"),
    [
        (LINUX, Built("4.2.2", "4.2", "x86_64-pc-linux-gnu", "unix")),
        (PURE, Built("4.2.2", "4.2", "", "unix")),
        ("R 4.10.1; ; 2030-01-01 00:00:00 UTC; windows", Built("4.10.1", "4.10", "", "windows")),
        ("R 4.3.1; aarch64-apple-darwin20; 2023-06-16 21:52:54 UTC; unix",
         Built("4.3.1", "4.3", "aarch64-apple-darwin20", "unix")),
        ("R; ; 2026-11-23 22:54:27 UTC; unix", Built("", "", "", "unix")),
        ("R 99.99.999; ; 2030-01-01 00:00:00 UTC; unix", Built("99.99.999", "99.99", "", "unix")),
    ],
)  # fmt: skip
def test_built_field_is_parsed(tmp_path, text, built):
    path = make_tar(tmp_path, [("abc/DESCRIPTION", DESC + f"Built: {text}\n".encode())])
    assert read_package(str(path), BINARY).built == built


# Placement


def package(container: str = "tar.gz", built: str | None = None, name: str = "abc") -> RPackage:
    parsed = None
    if built is not None:
        version, platform, _, ostype = built.split("; ")
        r_version = version.removeprefix("R").strip()
        r_minor = ".".join(r_version.split(".")[:2])
        parsed = Built(r_version, r_minor, platform, ostype)
    return RPackage(name, "2.1", {}, container, False, parsed)


def built(platform: str, r: str = "4.2.2", ostype: str = "unix") -> str:
    return f"R {r}; {platform}; 2026-11-23 22:54:28 UTC; {ostype}"


WIN = built("x86_64-w64-mingw32", "4.3.2", "windows")
MAC_ARM = built("aarch64-apple-darwin20")
LONGEST_BUILD = "a" * 20 + "-" + "b" * 19  # 40 characters


@pytest.mark.parametrize(
    ("pkg", "filetype", "rversion", "platform", "expected"),
    [
        (package("tar.gz"), SOURCE, None, None, ("src/contrib", "abc_2.1.tar.gz")),
        (package("tar.xz"), SOURCE, None, None, ("src/contrib", "abc_2.1.tar.xz")),
        (package("tar.bz2"), SOURCE, None, None, ("src/contrib", "abc_2.1.tar.bz2")),
        (package("tar"), SOURCE, "4.4", "noble-x86_64", ("src/contrib", "abc_2.1.tar")),
        (package("zip", WIN), BINARY, None, None, ("bin/windows/contrib/4.3", "abc_2.1.zip")),
        (package("zip", built("", "4.10.0", "windows")), BINARY, None, None,
         ("bin/windows/contrib/4.10", "abc_2.1.zip")),
        (package("zip", WIN), BINARY, "4.3.1", None, ("bin/windows/contrib/4.3", "abc_2.1.zip")),
        (package(built=built("x86_64-apple-darwin17.0")), BINARY, None, None,
         ("bin/macosx/contrib/4.2", "abc_2.1.tgz")),
        (package(built=built("x86_64-apple-darwin20", "4.3.1")), BINARY, None, None,
         ("bin/macosx/big-sur-x86_64/contrib/4.3", "abc_2.1.tgz")),
        (package(built=MAC_ARM), BINARY, None, None,
         ("bin/macosx/big-sur-arm64/contrib/4.2", "abc_2.1.tgz")),
        (package(built=built("aarch64-apple-darwin23", "4.6.0")), BINARY, None, None,
         ("bin/macosx/sonoma-arm64/contrib/4.6", "abc_2.1.tgz")),
        (package(built=MAC_ARM), BINARY, "4.2", "big-sur-arm64",
         ("bin/macosx/big-sur-arm64/contrib/4.2", "abc_2.1.tgz")),
        (package(built=PURE), BINARY, None, "macosx", ("bin/macosx/contrib/4.2", "abc_2.1.tgz")),
        (package(built=PURE), BINARY, None, "big-sur-x86_64",
         ("bin/macosx/big-sur-x86_64/contrib/4.2", "abc_2.1.tgz")),
        (package(built=PURE), BINARY, "4.2.3", "big-sur-arm64",
         ("bin/macosx/big-sur-arm64/contrib/4.2", "abc_2.1.tgz")),
        (package(built=PURE), BINARY, None, "sonoma-arm64",
         ("bin/macosx/sonoma-arm64/contrib/4.2", "abc_2.1.tgz")),
        (package(built=PURE), BINARY, None, "aarch64-apple-darwin23",
         ("bin/macosx/sonoma-arm64/contrib/4.2", "abc_2.1.tgz")),
        (package(built="R ; ; x; unix"), BINARY, "4.5", "big-sur-arm64",
         ("bin/macosx/big-sur-arm64/contrib/4.5", "abc_2.1.tgz")),
        (package(built=LINUX), BINARY, None, "noble-x86_64",
         ("bin/linux/noble-x86_64/contrib/4.2", "abc_2.1_R_x86_64-pc-linux-gnu.tar.gz")),
        (package("tar.xz", LINUX), BINARY, "4.2", "jammy-x86_64",
         ("bin/linux/jammy-x86_64/contrib/4.2", "abc_2.1_R_x86_64-pc-linux-gnu.tar.xz")),
        (package(built=PURE), BINARY, None, "noble-x86_64",
         ("bin/linux/noble-x86_64/contrib/4.2", "abc_2.1_R_noble-x86_64.tar.gz")),
        (package(built="R ; ; x; unix"), BINARY, "10.99.999", LONGEST_BUILD,
         (f"bin/linux/{LONGEST_BUILD}/contrib/10.99", f"abc_2.1_R_{LONGEST_BUILD}.tar.gz")),
    ],
)  # fmt: skip
def test_placement(pkg, filetype, rversion, platform, expected):
    assert placement(pkg, filetype, rversion, platform) == expected


@pytest.mark.parametrize(
    ("pkg", "rversion", "platform", "message"),
    [
        (package("zip"), None, None, "Invalid R package: not a binary package (no Built field)"),
        (package("zip", built("", ostype="unix")), None, None,
         "A zip binary must be built for Windows (Built ends in unix)"),
        (package("tar.gz", WIN), None, None, "A Windows binary must be a zip archive"),
        (package(built=PURE), None, None,
         "Built field has no platform: add the form field platform"
         " (e.g. big-sur-arm64 or noble-x86_64)"),
        (package(built=PURE), "4.2", None,
         "Built field has no platform: add the form field platform"
         " (e.g. big-sur-arm64 or noble-x86_64)"),
        (package(built=LINUX), None, None,
         "A Linux binary needs the form field platform (e.g. noble-x86_64)"),
        (package(built="R ; ; x; unix"), None, "big-sur-arm64",
         "Built field has no R version: add the form field rversion (e.g. 4.4)"),
        (package("zip", "R ; ; x; windows"), None, None,
         "Built field has no R version: add the form field rversion (e.g. 4.4)"),
        (package(built=MAC_ARM), "4.3", None,
         "rversion 4.3 does not match the Built field's R 4.2.2"),
        (package("zip", WIN), "4.2.2", None,
         "rversion 4.2 does not match the Built field's R 4.3.2"),
        (package(built=MAC_ARM), "four", None,
         "Invalid rversion 'four': expected e.g. 4.4 or 4.4.1"),
        (package(built=MAC_ARM), "4", None, "Invalid rversion '4': expected e.g. 4.4 or 4.4.1"),
        # They name a directory: a write token must not store bin/macosx/contrib/999...9.1
        (package(built="R ; ; x; unix"), "9" * 300 + ".1", "big-sur-arm64",
         f"Invalid rversion '{'9' * 97}...': expected e.g. 4.4 or 4.4.1"),
        (package(built="R ; ; x; unix"), "4.100", "big-sur-arm64", "Invalid rversion '4.100'"),
        (package(built="R ; ; x; unix"), "4.4.1000", "big-sur-arm64", "Invalid rversion '4.4.1"),
        (package(built=PURE), None, "noble-" + "x" * 35,
         f"Unknown platform 'noble-{'x' * 35}': expected macosx, big-sur-x86_64, big-sur-arm64,"
         " sonoma-arm64 or a Linux build like noble-x86_64 (at most 40 characters)"),
        (package(built=built("x86_64-apple-darwin13.4.0")), None, None,
         "Unknown Built platform 'x86_64-apple-darwin13.4.0'"),
        (package(built=built("universal-apple-darwin")), None, "macosx",
         "platform 'macosx' does not match the Built platform 'universal-apple-darwin'"),
        (package(built=MAC_ARM), None, "sonoma-arm64",
         "platform 'sonoma-arm64' does not match the Built platform 'aarch64-apple-darwin20'"),
        (package(built=MAC_ARM), None, "noble-x86_64",
         "platform 'noble-x86_64' does not match the Built platform 'aarch64-apple-darwin20'"),
        (package(built=LINUX), None, "big-sur-arm64",
         "platform 'big-sur-arm64' does not match the Built platform 'x86_64-pc-linux-gnu'"),
        (package(built=PURE), None, "windows", "Unknown platform 'windows': expected macosx,"),
        (package(built=PURE), None, "Noble-x86_64", "Unknown platform 'Noble-x86_64': expected"),
        (package(built=LINUX), None, "x86_64-pc-linux-gnu", "Unknown platform 'x86_64-pc-linux"),
        (package(built=PURE), None, "../../src", "Unknown platform '../../src': expected"),
        (package("tar.xz", MAC_ARM), None, None,
         "A macOS binary must be a gzip-compressed tar (.tgz)"),
        (package("tar", PURE), None, "macosx", "A macOS binary must be a gzip-compressed tar"),
    ],
)  # fmt: skip
def test_bad_binary_placement_is_rejected(pkg, rversion, platform, message):
    assert invalid(placement, pkg, BINARY, rversion, platform).startswith(message)


def test_zip_is_never_a_source_package():
    assert invalid(placement, package("zip"), SOURCE, None, None) == (
        "A source package must be a tar archive (R CMD build), not a zip"
    )


# Real R


def r_command(*args: str, cwd: Path) -> None:
    """Run an R command line in `cwd`, failing (never skipping) when R is missing."""
    if shutil.which("R") is None:
        pytest.fail("R is not installed: make test installs r-base-core")
    env = {**os.environ, "HOME": str(cwd), "R_LIBS_USER": str(cwd / "lib")}
    done = subprocess.run(
        ["R", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"R {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="session")
def built_by_r(tmp_path_factory) -> Path:
    """abc 2.1 and abcc 0.1-1 built by R CMD build, abc also as .tar.xz, and both installed
    with --build into Linux binaries."""
    out = tmp_path_factory.mktemp("r")
    (out / "lib").mkdir()
    (out / "xz").mkdir()
    for name in ("abc-2.1", "abcc-0.1-1"):
        shutil.copytree(FIXTURES / name, out / name)
        r_command("CMD", "build", "--no-manual", "--no-build-vignettes", name, cwd=out)
    build = ("CMD", "build", "--no-manual", "--no-build-vignettes", "--compression=xz")
    r_command(*build, "../abc-2.1", cwd=out / "xz")
    for tarball in ("abc_2.1.tar.gz", "abcc_0.1-1.tar.gz"):
        r_command("CMD", "INSTALL", "--build", "-l", "lib", tarball, cwd=out)
    return out


def test_r_source_package_with_continuation_lines(built_by_r):
    pkg = read_package(str(built_by_r / "abc_2.1.tar.gz"), SOURCE)
    assert (pkg.package, pkg.version, pkg.container) == ("abc", "2.1", "tar.gz")
    assert pkg.fields["Authors@R"] == (
        'person("Repo", "Tester", email = "tester@example.invalid",\nrole = c("aut", "cre"))'
    )
    assert pkg.fields["Description"].count("\n") == 2
    assert pkg.fields["Description"].endswith("\ndescription spans several lines to exercise DCF"
                                              " continuation lines.")  # fmt: skip
    assert pkg.fields["Depends"] == "R (>= 3.5.0)"
    assert (pkg.needs_compilation, pkg.built) == (False, None)
    assert placement(pkg, SOURCE, None, None) == ("src/contrib", "abc_2.1.tar.gz")


def test_r_xz_source_package_keeps_its_extension(built_by_r):
    pkg = read_package(str(built_by_r / "xz" / "abc_2.1.tar.xz"), SOURCE)
    assert pkg.container == "tar.xz"
    assert placement(pkg, SOURCE, None, None) == ("src/contrib", "abc_2.1.tar.xz")


def test_r_source_package_with_compiled_code(built_by_r):
    pkg = read_package(str(built_by_r / "abcc_0.1-1.tar.gz"), SOURCE)
    assert (pkg.version, pkg.fields["NeedsCompilation"], pkg.needs_compilation) == (
        "0.1-1",
        "yes",
        True,
    )
    assert refused(built_by_r / "abcc_0.1-1.tar.gz", BINARY).startswith(
        "Invalid R package: not a binary package"
    )


def test_r_linux_binary_is_placed_under_its_build(built_by_r):
    path = built_by_r / "abcc_0.1-1_R_x86_64-pc-linux-gnu.tar.gz"
    pkg = read_package(str(path), BINARY)
    assert pkg.built is not None
    assert (pkg.built.platform, pkg.built.ostype) == ("x86_64-pc-linux-gnu", "unix")
    minor = pkg.built.r_minor
    assert pkg.built.r_version.startswith(f"{minor}.")
    assert invalid(placement, pkg, BINARY, None, None).startswith("A Linux binary needs")
    assert placement(pkg, BINARY, None, "noble-x86_64") == (
        f"bin/linux/noble-x86_64/contrib/{minor}",
        path.name,
    )
    assert refused(path, SOURCE).startswith("Invalid R package: this is a binary package")


def test_r_pure_binary_needs_a_platform(built_by_r):
    pkg = read_package(str(built_by_r / "abc_2.1_R_x86_64-pc-linux-gnu.tar.gz"), BINARY)
    assert pkg.built is not None and pkg.built.platform == ""
    assert invalid(placement, pkg, BINARY, None, None).startswith("Built field has no platform")
    assert placement(pkg, BINARY, None, "big-sur-arm64") == (
        f"bin/macosx/big-sur-arm64/contrib/{pkg.built.r_minor}",
        "abc_2.1.tgz",
    )


def test_r_built_packages_are_accepted_by_the_upload(built_by_r, app, client, owner):
    """What `R CMD build` and `R CMD INSTALL --build` make passes the unpacking checks."""
    uploads = [
        r_form(dist=(built_by_r / "abc_2.1.tar.gz").read_bytes()),
        r_form((built_by_r / "abcc_0.1-1.tar.gz").read_bytes(), "abcc_0.1-1.tar.gz"),
        r_form((built_by_r / "abcc_0.1-1_R_x86_64-pc-linux-gnu.tar.gz").read_bytes(),
               "abcc_0.1-1_R_x86_64-pc-linux-gnu.tar.gz", filetype=BINARY,
               platform="noble-x86_64"),
    ]  # fmt: skip

    answers = [send(client, "POST", "/api/repo/ch", data=form, headers=owner) for form in uploads]

    assert [answer.status_code for answer in answers] == [200] * 3, [a.status for a in answers]
    assert stored(app)["files"] == 3
