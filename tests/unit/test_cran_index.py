"""repo.cran.index and repo.cran.rds: PACKAGES text pinned to R's own output and compared with
what R's write.dcf makes of the same matrix, .rds bytes compared with R's serialize(), and every
index file read back by real R (one Rscript run per session)."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from repo.cran import rds
from repo.cran.index import Entry, build

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
# Values write.dcf folds, one package each: long, multi-line (as R CMD build leaves them),
# paragraphs, two spaces after a sentence (also where a line ends), tabs, a word wider than the
# line, wide and zero-width characters, lines at the width's edge.
TRICKY_VALUES = [
    "tools (>= 3.5.0), parallel (>= 3.5.0), grid (>= 3.5.0), splines (>= 3.5.0), stats4",
    "methods, stats (>= 3.5.0), utils (>= 3.5.0),\ngraphics (>= 3.5.0), grDevices (>= 3.5.0)",
    "testthat (>= 3.0.0),\nknitr,\na.package.name.that.is.far.longer.than.the.line.width.of.72",
    "first paragraph\n\nsecond paragraph\n\n.dot opens the third",
    'One sentence.  Two spaces after it?  Yes!  And "quoted."  Then (a bracket.)  end',
    "tab\tseparated\t\twords and   runs of   blanks, " + "word " * 12,
    "x" * 62,
    "x" * 63,
    "y " * 31 + "yy",
    ", ".join(f"dependency{i} (>= {i}.0)" for i in range(20)),
    "x" * 56 + " end.  A line ends in the two spaces after a sentence",
    "x" * 57 + " end.  The next line would start with them",
    "Zoë Ångström, José Núñez, Łukasz Żółć, " * 2,
    "中文字符 " * 12,
    "e\u0301 combining and zero\u200bwidth. \u200b after a sentence end " * 2,
    "a\n \n \t\nb",
]
TRICKY = [
    Entry({"Package": f"tricky{i:02d}", "Version": "1.0", "Depends": value,
           "License": value if i % 2 else "GPL-3"})
    for i, value in enumerate(TRICKY_VALUES)
]  # fmt: skip
# A value with newlines and what read.dcf makes of it in PACKAGES: never a field or record.
HOSTILE = [
    ("R\nPackage: evil\n\nPackage: x", "R Package: evil\n\nPackage: x"),
    ("R\r\nPackage: evil\r\n\r\nPackage: x", "R Package: evil\n\nPackage: x"),
    ("R\rPackage: evil", "R Package: evil"),
    ("R\n\tPackage: evil\n \nVersion: 9", "R Package: evil\n\nVersion: 9"),
    ("R\u2028Package: evil\x85Version: 9", "R Package: evil Version: 9"),
    ("\nR\x00\x1b[31m\x7f\x0b\x0cx ", "R [31m x"),
    ("R\n.\nPackage: evil", "R . Package: evil"),
    # write.dcf itself would end the record here (a line of one space): see _field
    ("R\n\n\u200b\n\nPackage: evil", "R\n\nPackage: evil"),
]
ARCHIVE = {
    "abc": [("abc/abc_1.0.tar.gz", 1234, 1_000_000_000.0), ("abc/abc_2.0.tar.gz", 5678, 1.5e9)],
    "abcuser": [("abcuser/abcuser_0.9.tar.gz", 42, 1_600_000_000.25)],
}


def parse_dcf(text: str) -> list[dict[str, str]]:
    """Records as read.dcf reads them, strictly: a line that starts with a space or tab continues
    the field before it ("." alone is an empty line), records end at an empty line, and no other
    line may be blank."""
    records: list[dict[str, str]] = [{}]
    field = ""
    for line in text.split("\n")[:-1]:
        if line == "":
            records.append({})
            continue
        assert line.strip(), f"a blank line that is not empty: {line!r}"
        if line[0] in " \t":
            assert field in records[-1], f"a continuation line opens a record: {line!r}"
            records[-1][field] += "\n" + ("" if line.strip() == "." else line.strip())
            continue
        field, sep, value = line.partition(":")
        assert sep and field.isidentifier() and field not in records[-1], line
        records[-1][field] = value.strip()
    return records


def test_source_packages_match_write_packages_byte_for_byte():
    assert build([ABCUSER, ABC, ABCC], binary=False).packages.decode() == R_PACKAGES


def test_gz_decompresses_to_packages_and_bytes_are_deterministic():
    first, second = build([ABC, ABCC, CAFE], False), build([ABC, ABCC, CAFE], False)
    assert gzip.decompress(first.packages_gz) == first.packages
    assert first == second
    assert first.packages_gz[4:8] == b"\0\0\0\0"  # gzip mtime: same content, same ETag


def test_binary_packages_drop_needs_compilation_and_add_built():
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


@pytest.mark.parametrize(("hostile", "read_back"), HOSTILE)
def test_a_value_cannot_start_a_field_or_record(hostile, read_back):
    entry = Entry({**ABC.fields, "Depends": hostile, "Suggests": hostile}, file=hostile)
    text = build([entry], binary=False).packages.decode()
    [record] = parse_dcf(text)
    assert list(record) == ["Package", "Version", "Depends", "Suggests", "License", "MD5sum",
                            "NeedsCompilation", "File"]  # fmt: skip
    assert record["Package"] == "abc" and record["Version"] == "2.0"
    assert record["Depends"] == record["Suggests"] == record["File"] == read_back
    assert all(ch == "\n" or ch.isprintable() for ch in text)


def test_long_and_multi_line_values_fold_onto_continuation_lines():
    text = build(TRICKY, binary=False).packages.decode()
    records = parse_dcf(text)
    assert [record["Package"] for record in records] == [e.fields["Package"] for e in TRICKY]
    ascii_lines = [line for line in text.splitlines() if line.isascii() and "a.package" not in line]
    assert max(map(len, ascii_lines)) == 71  # strwrap(width = 72) keeps lines shorter
    assert (
        "Depends: tools (>= 3.5.0), parallel (>= 3.5.0), grid (>= 3.5.0),\n        splines" in text
    )


def test_an_entry_without_package_is_refused():
    with pytest.raises(ValueError, match="Package"):
        build([Entry({"Package": " \n", "Version": "1"})], binary=False)


def test_empty_index():
    built = build([], binary=False)
    assert built.packages == b""
    assert gzip.decompress(built.packages_gz) == b""


def test_rds_refuses_a_ragged_matrix():
    with pytest.raises(ValueError):
        rds.character_matrix(["a"], ["x", "y"], [["a"]])


R_SCRIPT = r"""
root <- commandArgs(trailingOnly = TRUE)[[1]]
out <- function(key, value) cat(key, "=", paste(encodeString(value), collapse = "|"), "\n", sep = "")
bytes <- function(path) readBin(path, "raw", file.size(path))
out("std.source", tools:::.get_standard_repository_db_fields("source"))
out("std.binary", tools:::.get_standard_repository_db_fields("win.binary"))
for (name in c("src", "bin", "tricky", "hostile")) {
  dir <- file.path(root, name)
  m <- readRDS(file.path(dir, "PACKAGES.rds"))
  out(paste0(name, ".gzcon"), identical(m, readRDS(gzcon(file(file.path(dir, "PACKAGES.rds"), "rb")))))
  out(paste0(name, ".type"), c(class(m), typeof(m)))
  out(paste0(name, ".colnames"), colnames(m))
  d <- read.dcf(file.path(dir, "PACKAGES"))
  out(paste0(name, ".records"), nrow(d))
  out(paste0(name, ".fields"), colnames(d))
  out(paste0(name, ".same_rows"), identical(unname(d[, c("Package", "Version")]),
                                            unname(m[, c("Package", "Version")])) &&
                                  setequal(colnames(d), colnames(m)[colSums(!is.na(m)) > 0]))
  out(paste0(name, ".depends"), d[, "Depends"])
  out(paste0(name, ".gz"), identical(read.dcf(gzfile(file.path(dir, "PACKAGES.gz"))), d))
  # What tools:::.write_repository_package_db writes of this matrix.
  con <- file(file.path(dir, "R-PACKAGES"), "wt")
  write.dcf(m, con)
  close(con)
  out(paste0(name, ".write_dcf"), identical(bytes(file.path(dir, "R-PACKAGES")), bytes(file.path(dir, "PACKAGES"))))
  writeBin(serialize(m, NULL, version = 2L), file.path(dir, "R-serialized"))
  av <- available.packages(repos = NULL, contriburl = paste0("file://", dir))
  out(paste0(name, ".available"), paste(rownames(av), av[, "Version"], av[, "File"]))
}
out("hostile.r_own_index", tryCatch(nrow(read.dcf(file.path(root, "hostile", "R-PACKAGES"))),
                                    error = function(e) "read.dcf fails"))
m <- readRDS(file.path(root, "src", "PACKAGES.rds"))
out("utf8", c(Encoding(m["cafe", "License"]), m["cafe", "License"] == "Caf\u00e9 \u2013 proprietary"))
out("blank_is_na", is.na(m["cafe", "Suggests"]))
e <- readRDS(gzcon(file(file.path(root, "empty", "PACKAGES.rds"), "rb")))
out("empty.rds", identical(e, matrix(character(), 0, 15, dimnames = list(NULL, colnames(e)))))
out("empty.colnames", colnames(e))
av <- available.packages(repos = NULL, contriburl = paste0("file://", file.path(root, "empty")))
out("empty.available", nrow(av))
out("empty.gz", length(readLines(gzfile(file.path(root, "empty", "PACKAGES.gz")))))
m <- matrix(c("abc", NA), 1, 2, dimnames = list("abc", c("x", "\u00e9")))
writeBin(serialize(m, NULL, version = 2L), file.path(root, "small-serialized"))
a <- readRDS(gzcon(file(file.path(root, "archive.rds"), "rb")))
out("archive.names", names(a))
out("archive.rownames", row.names(a$abc))
invisible(file.create(f <- tempfile()))
info <- file.info(f)
out("archive.columns", identical(names(a$abc), names(info)))
out("archive.classes", identical(lapply(a$abc, class), lapply(info, class)) &&
                       identical(lapply(a$abc, typeof), lapply(info, typeof)))
t <- .POSIXct(c(1e9, 1.5e9))
out("archive.abc", identical(a$abc, structure(list(
  size = c(1234, 5678), isdir = c(FALSE, FALSE), mode = as.octmode(c("644", "644")),
  mtime = t, ctime = t, atime = t, uid = c(NA_integer_, NA_integer_),
  gid = c(NA_integer_, NA_integer_), uname = c(NA_character_, NA_character_),
  grname = c(NA_character_, NA_character_)),
  class = "data.frame", row.names = c("abc/abc_1.0.tar.gz", "abc/abc_2.0.tar.gz"))))
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
    hostile = [
        Entry({"Package": f"hostile{i}", "Version": "1.0", "Depends": value, "License": value},
              file=value)
        for i, (value, _) in enumerate(HOSTILE)
    ]  # fmt: skip
    for name, built in [
        ("src", build([ABCUSER, ABC, ABCC, CAFE], binary=False)),
        ("bin", build([BINARY], binary=True)),
        ("tricky", build(TRICKY, binary=False)),
        ("hostile", build(hostile, binary=False)),
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
    said = dict(line.split("=", 1) for line in result.stdout.splitlines())
    return {**said, "root": str(root)}


@pytest.mark.parametrize("subdir", ["src", "bin", "tricky", "hostile"])
def test_r_reads_rds_and_packages_alike(r_reads, subdir):
    assert r_reads[f"{subdir}.type"] == "matrix|array|character"
    assert r_reads[f"{subdir}.gzcon"] == "TRUE"  # what readRDS(gzcon(url())) needs
    assert r_reads[f"{subdir}.gz"] == "TRUE"
    assert r_reads[f"{subdir}.same_rows"] == "TRUE"


@pytest.mark.parametrize("subdir", ["src", "bin", "tricky"])
def test_packages_is_what_write_dcf_writes_of_the_rds_matrix(r_reads, subdir):
    assert r_reads[f"{subdir}.write_dcf"] == "TRUE"


def test_a_hostile_value_stays_in_its_record_where_write_dcf_would_break_it(r_reads):
    assert r_reads["hostile.records"] == str(len(HOSTILE))
    assert r_reads["hostile.fields"] == "Package|Version|Depends|License|File"
    assert r_reads["hostile.depends"] == "|".join(
        read_back.replace("\n", "\\n") for _, read_back in HOSTILE
    )
    assert r_reads["hostile.r_own_index"] == "read.dcf fails"  # the U+200B paragraph


@pytest.mark.parametrize("subdir", ["src", "bin", "tricky", "hostile"])
def test_rds_bytes_are_what_r_serializes(r_reads, subdir):
    directory = Path(r_reads["root"]) / subdir
    ours = gzip.decompress((directory / "PACKAGES.rds").read_bytes())
    theirs = (directory / "R-serialized").read_bytes()
    assert ours[:6] == theirs[:6] and ours[10:] == theirs[10:]  # [6:10]: the writer's R version


def test_rds_bytes_of_a_matrix_r_made_itself(r_reads):
    theirs = (Path(r_reads["root"]) / "small-serialized").read_bytes()
    ours = gzip.decompress(rds.character_matrix(["abc"], ["x", "é"], [["abc", None]]))
    assert ours[:6] == theirs[:6] and ours[10:] == theirs[10:]


def test_r_sees_every_standard_column_and_file(r_reads):
    assert r_reads["src.colnames"] == r_reads["std.source"] + "|File"
    # write_PACKAGES(type = "win.binary", fields = "Built")
    assert r_reads["bin.colnames"] == r_reads["std.binary"] + "|Built"
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
    assert r_reads["empty.colnames"] == r_reads["std.source"]
    assert r_reads["empty.available"] == "0"
    assert r_reads["empty.gz"] == "0"


def test_r_reads_archive_index_as_file_info_data_frames(r_reads):
    assert r_reads["archive.names"] == "abc|abcuser"
    assert r_reads["archive.rownames"] == "abc/abc_1.0.tar.gz|abc/abc_2.0.tar.gz"
    assert r_reads["archive.columns"] == r_reads["archive.classes"] == "TRUE"
    assert r_reads["archive.abc"] == "TRUE"
    assert r_reads["archive.abcuser"] == "2020-09-13 12:26:40.25"
    assert r_reads["archive.empty"] == "TRUE"
