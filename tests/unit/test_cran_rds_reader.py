"""repo.cran.rds's reader: what real R serializes (formats 2 and 3) read back, archive.rds rows
as R saves them and as this package writes them, and malformed or hostile input refused with
ValueError only (one Rscript run per session)."""

from __future__ import annotations

import gzip
import math
import os
import struct

import pytest

from repo.cran import rds
from repo.cran.rds import ArchivedFile, RObject

from ..e2e.live import rscript

R_SCRIPT = r"""
root <- "{root}"
latin <- iconv("caf\u00e9", "UTF-8", "latin1")
x <- list(text = c(latin, "caf\u00e9", NA), ints = c(1L, NA), reals = c(1.5, NA), flag = TRUE,
          nothing = NULL, inner = list(text = "again"))
writeBin(serialize(x, NULL, version = 3L), file.path(root, "object-3"))
writeBin(serialize(x, NULL, version = 2L), file.path(root, "object-2"))
writeBin(serialize(1:10, NULL, version = 3L), file.path(root, "altrep"))
writeBin(serialize(function(x) x, NULL, version = 2L), file.path(root, "closure"))
frame <- function(rows, size, mtime) structure(
  list(size = size, isdir = rep(FALSE, length(size)), mtime = .POSIXct(mtime)),
  class = "data.frame", row.names = rows)
db <- list(
  abc = frame(c("abc/abc_0.9.tar.gz", "abc/abc_0.10.tar.xz", "abc/xyz_1.0.tar.gz",
                "abc/abc_1.0.zip"), c(7, NA, 3, 4), c(1.6e9, NA, 1, 2)),
  z.pkg = frame("z.pkg/z.pkg_1.0-1.tar.bz2", 3, 1.5e9),
  "../up" = frame("../up/../up_1.0.tar.gz", 1, 1),
  compact = data.frame(size = c(1, 2), mtime = .POSIXct(c(1, 2))))
saveRDS(db, file.path(root, "archive-3"), compress = FALSE)
saveRDS(db, file.path(root, "archive-2"), compress = FALSE, version = 2)
"""
NAMES = ["text", "ints", "reals", "flag", "nothing", "inner"]
NA_INTEGER = -(2**31)
HEADER = b"X\n" + struct.pack(">3i", 2, 0x00040202, 0x00020300)
NULL = struct.pack(">i", 254)


@pytest.fixture(scope="session")
def r_wrote(tmp_path_factory) -> dict[str, bytes]:
    """The bytes R's serialize() and saveRDS() wrote, by name."""
    root = tmp_path_factory.mktemp("rds")
    env = {"PATH": os.environ["PATH"], "HOME": str(root), "LC_ALL": "C.UTF-8"}
    result = rscript(R_SCRIPT.format(root=root), env)
    assert result.returncode == 0, result.stderr
    return {path.name: path.read_bytes() for path in root.iterdir()}


@pytest.mark.parametrize("version", ["2", "3"])
def test_unserialize_reads_what_r_serializes(r_wrote, version):
    top = rds.unserialize(r_wrote[f"object-{version}"])

    assert isinstance(top, RObject) and top.attributes["names"] == RObject(NAMES, {})
    text, ints, reals, flag, nothing, inner = top.values
    assert text == RObject(["café", "café", None], {})  # latin1 and UTF-8 marks; NA
    assert ints == RObject([1, NA_INTEGER], {}) and flag == RObject([1], {})
    assert reals.values[0] == 1.5 and math.isnan(reals.values[1])
    assert nothing is None
    # The second "names" is a reference to the symbol read first.
    assert inner == RObject([RObject(["again"], {})], {"names": RObject(["text"], {})})


@pytest.mark.parametrize("version", ["2", "3"])
def test_archive_rows_as_r_saves_them(r_wrote, version):
    """Only rows naming a source archive of their own, validly named package: no other
    package's file, no zip, no "../", no compact row names."""
    assert rds.read_archive_index(r_wrote[f"archive-{version}"]) == [
        ArchivedFile("abc", "abc_0.9.tar.gz", "0.9", 7, 1.6e9),
        ArchivedFile("abc", "abc_0.10.tar.xz", "0.10", None, None),
        ArchivedFile("z.pkg", "z.pkg_1.0-1.tar.bz2", "1.0-1", 3, 1.5e9),
    ]


def test_archive_index_written_here_reads_back():
    packages = {
        "abc": [("abc/abc_1.0.tar.gz", 1234, 1e9), ("abc/abc_2.0.tar.gz", 5678, 1.5e9)],
        "abcuser": [("abcuser/abcuser_0.1.tar.gz", 10, 1_700_000_000.25)],
    }

    read = rds.read_archive_index(gzip.decompress(rds.archive_index(packages)))

    assert read == [
        ArchivedFile("abc", "abc_1.0.tar.gz", "1.0", 1234, 1e9),
        ArchivedFile("abc", "abc_2.0.tar.gz", "2.0", 5678, 1.5e9),
        ArchivedFile("abcuser", "abcuser_0.1.tar.gz", "0.1", 10, 1_700_000_000.25),
    ]
    assert rds.read_archive_index(gzip.decompress(rds.archive_index({}))) == []


def _vector(kind: int, count: int, body: bytes = b"") -> bytes:
    return struct.pack(">2i", kind, count) + body


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"A\n2\n", id="ascii-format"),
        pytest.param(b"X\n" + struct.pack(">3i", 1, 0, 0), id="format-1"),
        pytest.param(HEADER + struct.pack(">2i", 9, 100) + b"ab", id="string-past-the-end"),
        pytest.param(HEADER + _vector(16, 3), id="truncated"),
        pytest.param(HEADER + _vector(19, 1) * 50_000 + NULL, id="nested-too-deep"),
    ],
)
def test_malformed_serializations_are_value_errors(data):
    with pytest.raises(ValueError):
        rds.unserialize(data)
    with pytest.raises(ValueError):
        rds.read_archive_index(data)


@pytest.mark.parametrize("name", ["altrep", "closure"])
def test_objects_no_archive_rds_has_are_refused(r_wrote, name):
    with pytest.raises(ValueError, match="an R object of type"):
        rds.unserialize(r_wrote[name])


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(HEADER + NULL, id="null"),
        pytest.param(HEADER + _vector(16, 1, struct.pack(">2i", 9, 1) + b"a"), id="unnamed"),
        pytest.param(
            HEADER + struct.pack(">2i", 19 | 0x200, 1) + NULL
            + struct.pack(">3i", 2 | 0x400, 1, 9) + struct.pack(">i", 5) + b"names"
            + _vector(16, 2, (struct.pack(">2i", 9, 1) + b"a") * 2) + NULL,
            id="more-names-than-frames",
        ),
    ],
)  # fmt: skip
def test_what_is_not_an_archive_index_is_a_value_error(data):
    with pytest.raises(ValueError):
        rds.read_archive_index(data)
