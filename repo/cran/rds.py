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

_SYMSXP, _LISTSXP, _CHARSXP, _INTSXP, _REALSXP, _STRSXP, _VECSXP = 1, 2, 9, 13, 14, 16, 19
_IS_OBJECT, _HAS_ATTR, _HAS_TAG = 0x100, 0x200, 0x400
# CHARSXP encoding marks live in the "gp" bits (shifted by 12): R flags pure-ASCII strings as
# ASCII and everything else we write as UTF-8, so readers in any locale translate correctly.
_ASCII, _UTF8 = 64 << 12, 8 << 12
_NULL = struct.pack(">i", 254)  # NILVALUE_SXP: R's NULL, also the end of a pairlist

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
    """gzip-compressed RDS of Meta/archive.rds: a named list of data.frames (size, mtime).

    Each tuple is (row name "<pkg>/<file>", size in bytes, mtime in Unix seconds). This is the
    part of CRAN's `file.info()` frames that remotes and pkgcache read (cran.md §4.4).
    """
    frames = [_data_frame(files) for files in packages.values()]
    return _rds(_list(frames, [("names", _strings(list(packages)))]))


def _data_frame(files: list[tuple[str, int, float]]) -> bytes:
    posixct = [("class", _strings(["POSIXct", "POSIXt"]))]  # no tzone, as file.info() writes
    columns = [_doubles([size for _, size, _ in files]),
               _doubles([mtime for _, _, mtime in files], posixct)]  # fmt: skip
    return _list(
        columns,
        [
            ("names", _strings(["size", "mtime"])),
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
