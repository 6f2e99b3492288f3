"""R's serialization format, written by hand for the two objects a CRAN-like repository serves:
the PACKAGES.rds character matrix and src/contrib/Meta/archive.rds (cran.md §4).

Some 100 lines of stdlib instead of the `rdata` package, which pulls in numpy, pandas and xarray
and writes neither a character matrix nor a data.frame without semi-private API (cran.md §4.3).
"""

import functools
import gzip
import struct
from collections.abc import Sequence

# XDR format version 2: read by every R >= 2.3, and version 3 only adds a native-encoding header
# that strings marked ASCII/UTF-8 do not need. The writer version (R 4.2.2) is informational.
_HEADER = b"X\n" + struct.pack(">3i", 2, 0x00040202, 0x00020300)

_SYMSXP, _LISTSXP, _CHARSXP, _LGLSXP = 1, 2, 9, 10
_INTSXP, _REALSXP, _STRSXP, _VECSXP = 13, 14, 16, 19
_IS_OBJECT, _HAS_ATTR, _HAS_TAG = 0x100, 0x200, 0x400
# CHARSXP encoding marks live in the "gp" bits (shifted by 12): R flags pure-ASCII strings as
# ASCII and everything else we write as UTF-8, so readers in any locale translate correctly.
_ASCII, _UTF8 = 64 << 12, 8 << 12
_NULL = struct.pack(">i", 254)  # NILVALUE_SXP: R's NULL, also the end of a pairlist
_NA_INTEGER = -(2**31)
# file.info()'s columns, in its order (R 4.2.2 base/R/files.R): CRAN's archive.rds is a list of
# its data.frames, one per package.
_FILE_INFO = ["size", "isdir", "mode", "mtime", "ctime", "atime", "uid", "gid", "uname", "grname"]

_Attributes = Sequence[tuple[str, bytes]]


def character_matrix(rows: list[str], columns: list[str], cells: list[list[str | None]]) -> bytes:
    """gzip-compressed RDS of an R character matrix (PACKAGES.rds); None = NA_character_."""
    if len(cells) != len(rows) or any(len(row) != len(columns) for row in cells):
        raise ValueError("cells must have one row per row name and one cell per column")
    column_major = [row[j] for j in range(len(columns)) for row in cells]
    # R itself stores dimnames of length 0 as NULL (`dimnames<-`), so an empty index does too.
    row_names = _strings(rows) if rows else _NULL
    dim = _vector(_INTSXP, 2, struct.pack(">2i", len(rows), len(columns)))
    dimnames = _list([row_names, _strings(columns)])
    return _rds(_strings(column_major, [("dim", dim), ("dimnames", dimnames)]))


def archive_index(packages: dict[str, list[tuple[str, int, float]]]) -> bytes:
    """gzip-compressed RDS of Meta/archive.rds: a named list of file.info() data.frames.

    Each tuple is (row name "<pkg>/<file>", size in bytes, mtime in Unix seconds), oldest
    version first: remotes::install_version scans the rows from the last, pkgcache reads
    names, row names and mtime (cran.md §4.4). The frames have every column of CRAN's own, as
    tools:::CRAN_archive_db() returns them; what a database row cannot say is the owner, so
    uid, gid, uname and grname are NA, the mode is 0644 and ctime and atime equal mtime.
    """
    frames = [_file_info(files) for files in packages.values()]
    return _rds(_list(frames, [("names", _strings(list(packages)))]))


def _file_info(files: list[tuple[str, int, float]]) -> bytes:
    count = len(files)
    posixct = [("class", _strings(["POSIXct", "POSIXt"]))]  # no tzone, as file.info() writes
    times = _doubles([mtime for _, _, mtime in files], posixct)
    owners = _integers(_INTSXP, [_NA_INTEGER] * count)
    columns = [
        _doubles([float(size) for _, size, _ in files]),
        _integers(_LGLSXP, [0] * count),  # isdir: FALSE
        _integers(_INTSXP, [0o644] * count, [("class", _strings(["octmode"]))]),
        times, times, times, owners, owners, _strings([None] * count), _strings([None] * count),
    ]  # fmt: skip
    return _list(
        columns,
        [
            ("names", _strings(_FILE_INFO)),
            ("class", _strings(["data.frame"])),
            ("row.names", _strings([name for name, _, _ in files])),
        ],
    )


def _rds(item: bytes) -> bytes:
    # gzip, because readRDS(gzcon(url())) reads only gzip or raw data (cran.md §4.2); mtime=0
    # so identical content gives identical bytes and so identical ETags.
    return gzip.compress(_HEADER + item, compresslevel=6, mtime=0)


@functools.lru_cache(maxsize=65536)  # versions, licenses, "no", NA: the same strings recur
def _chars(value: str | None) -> bytes:
    if value is None:
        return struct.pack(">2i", _CHARSXP, -1)  # NA_character_ has length -1
    data = value.encode()
    return struct.pack(">2i", _CHARSXP | (_ASCII if value.isascii() else _UTF8), len(data)) + data


def _strings(values: Sequence[str | None], attributes: _Attributes = ()) -> bytes:
    return _vector(_STRSXP, len(values), b"".join(map(_chars, values)), attributes)


def _integers(kind: int, values: Sequence[int], attributes: _Attributes = ()) -> bytes:
    """An integer or a logical vector: both are 32-bit integers on the wire."""
    return _vector(kind, len(values), struct.pack(f">{len(values)}i", *values), attributes)


def _doubles(values: Sequence[float], attributes: _Attributes = ()) -> bytes:
    body = struct.pack(f">{len(values)}d", *values)
    return _vector(_REALSXP, len(values), body, attributes)


def _list(items: Sequence[bytes], attributes: _Attributes = ()) -> bytes:
    return _vector(_VECSXP, len(items), b"".join(items), attributes)


def _vector(kind: int, length: int, body: bytes, attributes: _Attributes = ()) -> bytes:
    """A vector's flags, length and elements, then its attributes as a tagged pairlist."""
    if not attributes:
        return struct.pack(">2i", kind, length) + body
    # R sets the object bit exactly when there is a class attribute.
    is_object = _IS_OBJECT if any(name == "class" for name, _ in attributes) else 0
    flags = kind | _HAS_ATTR | is_object
    # A fresh SYMSXP per tag instead of a back-reference: simpler, and R reads it (cran.md §4.1).
    pairlist = b"".join(
        struct.pack(">2i", _LISTSXP | _HAS_TAG, _SYMSXP) + _chars(name) + value
        for name, value in attributes
    )
    return struct.pack(">2i", flags, length) + body + pairlist + _NULL
