"""repo.cran.index and repo.cran.rds: PACKAGES text pinned to R's own output, and every index
file read back by real R (one Rscript run per session)."""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import subprocess

import pytest

from repo.cran import rds
from repo.cran.index import BINARY_FIELDS, SOURCE_FIELDS, Entry, build

AUTHORS = 'person("Repo", "Tester", email = "tester@example.invalid",\n    role = c("aut", "cre"))'
COMMON = {"Type": "Package", "Authors@R": AUTHORS, "Encoding": "UTF-8"}
# The fixture packages as DESCRIPTION has them, plus what the caller adds (MD5sum, and
# NeedsCompilation for abcc, whose tarball has src/).
ABC = Entry(
    {**COMMON, "Package": "abc", "Title": "Tiny Test Package", "Version": "2.0",
     "Description": "A minimal package.\n    It spans several lines.",
     "License": "MIT + file LICENSE", "Depends": "R (>= 3.5.0)", "NeedsCompilation": "no",
     "MD5sum": "e07ccb9f99dd203a2ab10ae806284206"}
)  # fmt: skip
ABCC = Entry(
    {**COMMON, "Package": "abcc", "Title": "Compiled", "Version": "0.1-1", "License": "GPL-3",
     "NeedsCompilation": "yes", "MD5sum": "dea00ec68bc611d4c1fd8be3f404c464"}
)  # fmt: skip
ABCUSER = Entry(
    {**COMMON, "Package": "abcuser", "Version": "1.0", "License": "GPL-2 | GPL-3",
     "Imports": "abc (>= 2.0)", "Suggests": "testthat", "NeedsCompilation": "no",
     "MD5sum": "d595ecb7a430edb384516b5684c5e315"}
)  # fmt: skip
# cran.md §3.1, verified output of tools::write_PACKAGES(type = "source") in R 4.2.2.
R_PACKAGES = """\
Package: abc
Version: 2.0
Depends: R (>= 3.5.0)
License: MIT + file LICENSE
MD5sum: e07ccb9f99dd203a2ab10ae806284206
NeedsCompilation: no

Package: abcc
Version: 0.1-1
License: GPL-3
MD5sum: dea00ec68bc611d4c1fd8be3f404c464
NeedsCompilation: yes

Package: abcuser
Version: 1.0
Imports: abc (>= 2.0)
Suggests: testthat
License: GPL-2 | GPL-3
MD5sum: d595ecb7a430edb384516b5684c5e315
NeedsCompilation: no
"""
UTF8_LICENSE = "Café – proprietary"
CAFE = Entry(
    {"Package": "cafe", "Version": "1.0", "License": UTF8_LICENSE, "Suggests": " \n\t "},
    file="cafe_1.0.tar.xz",
)
BINARY = Entry(
    {"Package": "abc", "Version": "2.1", "Depends": "R (>= 3.5.0)", "License": "MIT",
     "NeedsCompilation": "no", "Built": "R 4.2.2; ; 2026-11-23 22:54:27 UTC; windows"}
)  # fmt: skip
ARCHIVE = {
    "abc": [("abc/abc_1.0.tar.gz", 1234, 1_000_000_000.0), ("abc/abc_2.0.tar.gz", 5678, 1.5e9)],
    "abcuser": [("abcuser/abcuser_0.9.tar.gz", 42, 1_600_000_000.25)],
}


def parse_dcf(text: str) -> list[dict[str, str]]:
    """A strict reader: every line is a field or a record separator, never a continuation."""
    records: list[dict[str, str]] = [{}]
    for line in text.split("\n")[:-1]:
        if line == "":
            records.append({})
            continue
        name, sep, value = line.partition(": ")
        assert sep and name.isidentifier() and name not in records[-1], line
        records[-1][name] = value
    return records


def test_source_packages_match_write_packages_byte_for_byte():
    assert build([ABCUSER, ABC, ABCC], binary=False).packages.decode() == R_PACKAGES


def test_gz_decompresses_to_packages_and_bytes_are_deterministic():
    first, second = build([ABC, ABCC, CAFE], False), build([ABC, ABCC, CAFE], False)
    assert gzip.decompress(first.packages_gz) == first.packages
    assert first == second
    assert first.packages_gz[4:8] == b"\0\0\0\0"  # gzip mtime: same content, same ETag


def test_binary_packages_drop_needs_compilation_and_add_built():
    assert BINARY_FIELDS[-2:] == ["MD5sum", "Built"] and "NeedsCompilation" not in BINARY_FIELDS
    assert parse_dcf(build([BINARY], binary=True).packages.decode()) == [
        {"Package": "abc", "Version": "2.1", "Depends": "R (>= 3.5.0)", "License": "MIT",
         "Built": "R 4.2.2; ; 2026-11-23 22:54:27 UTC; windows"}
    ]  # fmt: skip


def test_file_field_comes_last_and_blank_values_are_omitted():
    records = parse_dcf(build([CAFE, ABC], binary=False).packages.decode())
    assert [list(record) for record in records] == [
        ["Package", "Version", "Depends", "License", "MD5sum", "NeedsCompilation"],
        ["Package", "Version", "License", "File"],
    ]
    assert records[1]["License"] == UTF8_LICENSE and records[1]["File"] == "cafe_1.0.tar.xz"


def test_packages_are_sorted_case_insensitively_like_cran():
    names = ["zoo", "abd", "ABB", "Abc"]
    built = build([Entry({"Package": name, "Version": "1"}) for name in names], binary=False)
    assert [r["Package"] for r in parse_dcf(built.packages.decode())] == [
        "ABB",
        "Abc",
        "abd",
        "zoo",
    ]


@pytest.mark.parametrize(
    ("hostile", "cleaned"),
    [
        ("R\nPackage: evil\n\nPackage: x", "R Package: evil Package: x"),
        ("R\r\nPackage: evil\r\n\r\nPackage: x", "R Package: evil Package: x"),
        ("R\rPackage: evil", "R Package: evil"),
        ("R\n\tPackage: evil\n \nVersion: 9", "R Package: evil Version: 9"),
        ("R\u2028Package: evil\x85Version: 9", "R Package: evil Version: 9"),
        ("\nR\x00\x1b[31m\x7f\x0b\x0cx ", "R[31m x"),
    ],
)
def test_a_value_cannot_start_a_field_or_record(hostile, cleaned):
    entry = Entry({**ABC.fields, "Depends": hostile, "Suggests": hostile}, file=hostile)
    text = build([entry], binary=False).packages.decode()
    [record] = parse_dcf(text)
    assert list(record) == ["Package", "Version", "Depends", "Suggests", "License", "MD5sum",
                            "NeedsCompilation", "File"]  # fmt: skip
    assert record["Package"] == "abc" and record["Version"] == "2.0"
    assert record["Depends"] == record["Suggests"] == record["File"] == cleaned
    assert all(ch == "\n" or ch.isprintable() for ch in text)


def test_an_entry_without_package_is_refused():
    with pytest.raises(ValueError, match="Package"):
        build([Entry({"Package": " \n", "Version": "1"})], binary=False)


def test_empty_index():
    built = build([], binary=False)
    assert built.packages == b""
    assert gzip.decompress(built.packages_gz) == b""


def test_rds_bytes_follow_r_serialization():
    # cran.md §4.1, format version 2: a 1x2 matrix c("abc", NA) with a UTF-8 column name.
    def chars(text: bytes, level: int) -> bytes:
        return struct.pack(">2i", (level << 12) | 9, len(text)) + text

    sym = struct.pack(">3i", 0x402, 1, 0x40009)  # tagged pairlist node + SYMSXP + CHARSXP
    expected = (
        b"X\n" + bytes.fromhex("00000002 00040202 00020300 00000210 00000002")
        + chars(b"abc", 64) + bytes.fromhex("00000009 ffffffff")
        + sym + struct.pack(">i", 3) + b"dim" + bytes.fromhex("0000000d 00000002 00000001 00000002")
        + sym + struct.pack(">i", 8) + b"dimnames" + bytes.fromhex("00000013 00000002")
        + bytes.fromhex("00000010 00000001") + chars(b"abc", 64)
        + bytes.fromhex("00000010 00000002") + chars(b"x", 64) + chars("é".encode(), 8)
        + bytes.fromhex("000000fe")
    )  # fmt: skip
    assert gzip.decompress(rds.character_matrix(["abc"], ["x", "é"], [["abc", None]])) == expected


def test_rds_refuses_a_ragged_matrix():
    with pytest.raises(ValueError):
        rds.character_matrix(["a"], ["x", "y"], [["a"]])


R_SCRIPT = r"""
root <- commandArgs(trailingOnly = TRUE)[[1]]
out <- function(key, value) cat(key, "=", paste(value, collapse = "|"), "\n", sep = "")
for (name in c("src", "bin")) {
  dir <- file.path(root, name)
  m <- readRDS(file.path(dir, "PACKAGES.rds"))
  out(paste0(name, ".gzcon"), identical(m, readRDS(gzcon(file(file.path(dir, "PACKAGES.rds"), "rb")))))
  out(paste0(name, ".type"), c(class(m), typeof(m)))
  out(paste0(name, ".colnames"), colnames(m))
  d <- read.dcf(file.path(dir, "PACKAGES"))
  out(paste0(name, ".gz"), identical(read.dcf(gzfile(file.path(dir, "PACKAGES.gz"))), d))
  expected <- matrix(NA_character_, nrow(d), ncol(m), dimnames = list(unname(d[, "Package"]), colnames(m)))
  expected[, colnames(d)] <- d
  out(paste0(name, ".same_as_dcf"), identical(m, expected))
  av <- available.packages(repos = NULL, contriburl = paste0("file://", dir))
  out(paste0(name, ".available"), paste(rownames(av), av[, "Version"], av[, "File"]))
}
m <- readRDS(file.path(root, "src", "PACKAGES.rds"))
out("utf8", c(Encoding(m["cafe", "License"]), m["cafe", "License"] == "Caf\u00e9 \u2013 proprietary"))
out("blank_is_na", is.na(m["cafe", "Suggests"]))
e <- readRDS(gzcon(file(file.path(root, "empty", "PACKAGES.rds"), "rb")))
out("empty.rds", identical(e, matrix(character(), 0, 15, dimnames = list(NULL, colnames(e)))))
out("empty.colnames", colnames(e))
av <- available.packages(repos = NULL, contriburl = paste0("file://", file.path(root, "empty")))
out("empty.available", nrow(av))
out("empty.gz", length(readLines(gzfile(file.path(root, "empty", "PACKAGES.gz")))))
a <- readRDS(gzcon(file(file.path(root, "archive.rds"), "rb")))
out("archive.names", names(a))
out("archive.rownames", row.names(a$abc))
out("archive.posixct", inherits(a$abc$mtime, "POSIXct"))
out("archive.abc", identical(a$abc, data.frame(
  size = c(1234, 5678), mtime = .POSIXct(c(1e9, 1.5e9)),
  row.names = c("abc/abc_1.0.tar.gz", "abc/abc_2.0.tar.gz"))))
out("archive.abcuser", format(a$abcuser$mtime, "%Y-%m-%d %H:%M:%OS2", tz = "UTC"))
out("archive.empty", identical(readRDS(file.path(root, "archive-empty.rds")), setNames(list(), character())))
"""  # noqa: E501


@pytest.fixture(scope="session")
def r_reads(tmp_path_factory) -> dict[str, str]:
    """What R says about index files written here: key=value lines from one Rscript run."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        pytest.fail("R is not installed: make test installs r-base-core")
    root = tmp_path_factory.mktemp("cran")
    for name, built in [
        ("src", build([ABCUSER, ABC, ABCC, CAFE], binary=False)),
        ("bin", build([BINARY], binary=True)),
        ("empty", build([], binary=False)),
    ]:
        (root / name).mkdir()
        (root / name / "PACKAGES").write_bytes(built.packages)
        (root / name / "PACKAGES.gz").write_bytes(built.packages_gz)
        (root / name / "PACKAGES.rds").write_bytes(built.packages_rds)
    (root / "archive.rds").write_bytes(rds.archive_index(ARCHIVE))
    (root / "archive-empty.rds").write_bytes(rds.archive_index({}))
    script = root / "check.R"
    script.write_text(R_SCRIPT, encoding="utf-8")
    env = {"PATH": os.environ["PATH"], "HOME": str(root), "LC_ALL": "C.UTF-8", "R_LIBS_USER": ""}
    result = subprocess.run([rscript, "--vanilla", str(script), str(root)], capture_output=True,
                            text=True, timeout=60, env=env, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


@pytest.mark.parametrize("subdir", ["src", "bin"])
def test_r_reads_rds_as_the_same_matrix_as_packages(r_reads, subdir):
    assert r_reads[f"{subdir}.type"] == "matrix|array|character"
    assert r_reads[f"{subdir}.gzcon"] == "TRUE"  # what readRDS(gzcon(url())) needs
    assert r_reads[f"{subdir}.gz"] == "TRUE"
    assert r_reads[f"{subdir}.same_as_dcf"] == "TRUE"


def test_r_sees_every_standard_column_and_file(r_reads):
    assert r_reads["src.colnames"] == "|".join([*SOURCE_FIELDS, "File"])
    assert r_reads["bin.colnames"] == "|".join(BINARY_FIELDS)
    assert r_reads["blank_is_na"] == "TRUE"


def test_r_reads_utf8_strings_marked_utf8(r_reads):
    assert r_reads["utf8"] == "UTF-8|TRUE"


def test_available_packages_lists_the_rds_rows(r_reads):
    assert r_reads["src.available"] == (
        "abc 2.0 NA|abcc 0.1-1 NA|abcuser 1.0 NA|cafe 1.0 cafe_1.0.tar.xz"
    )
    assert r_reads["bin.available"] == "abc 2.1 NA"


def test_r_reads_the_empty_index(r_reads):
    assert r_reads["empty.rds"] == "TRUE"
    assert r_reads["empty.colnames"] == "|".join(SOURCE_FIELDS)
    assert r_reads["empty.available"] == "0"
    assert r_reads["empty.gz"] == "0"


def test_r_reads_archive_index_as_data_frames(r_reads):
    assert r_reads["archive.names"] == "abc|abcuser"
    assert r_reads["archive.rownames"] == "abc/abc_1.0.tar.gz|abc/abc_2.0.tar.gz"
    assert r_reads["archive.posixct"] == "TRUE"
    assert r_reads["archive.abc"] == "TRUE"
    assert r_reads["archive.abcuser"] == "2020-09-13 12:26:40.25"
    assert r_reads["archive.empty"] == "TRUE"
