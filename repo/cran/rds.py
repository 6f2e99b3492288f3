"""R's serialization format, by hand: written for the two objects a CRAN-like repository serves
(the PACKAGES.rds character matrix and src/contrib/Meta/archive.rds, cran.md §4), and read for
an upstream's archive.rds (`read_archive_index`). Pure: no Flask, no database.

Some 200 lines of stdlib instead of the `rdata` package, which pulls in numpy, pandas and xarray
and writes neither a character matrix nor a data.frame without semi-private API (cran.md §4.3).
"""

import functools
import gzip
import re
import struct
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

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


# --- reading ---------------------------------------------------------------------------------

# base:::.standard_regexps() (R-exts 1.1.1): what a package's name and version may be, so that
# no upstream row can name a file outside its package's directory.
PACKAGE_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9.]*[A-Za-z0-9]")
VERSION_PATTERN = re.compile(r"[0-9]+(?:[.-][0-9]+)+")
# What reading a malformed or hostile serialization raises; the readers say ValueError instead.
_MALFORMED = (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError,
              struct.error)  # fmt: skip


class RObject(NamedTuple):
    """An R vector as read: its elements, and its attributes by name."""

    values: list[Any]
    attributes: dict[str, Any]


class ArchivedFile(NamedTuple):
    """One row of an archive.rds: a source archive of an older version of a package."""

    package: str
    filename: str  # "<package>_<version>.tar.gz" (or .bz2, .xz)
    version: str
    size: int | None  # None for NA
    mtime: float | None  # Unix seconds; None for NA


def unserialize(data: bytes) -> Any:
    """What R's serialize() wrote to `data` (uncompressed XDR, format 2 or 3): None for NULL
    and NA_character_, a str, an RObject, or a pairlist as [(tag, value), ...]. ValueError
    when it is malformed or holds other objects."""
    try:
        return _Reader(data).item()
    except _MALFORMED as error:
        raise ValueError(str(error)) from None


def read_archive_index(data: bytes) -> list[ArchivedFile]:
    """The rows of an (uncompressed) archive.rds: a named list of file.info() data frames whose
    row names are "<pkg>/<file>" (cran.md §4.4); a row that names no source archive of its
    package is left out. ValueError when `data` is not such a list."""
    top = unserialize(data)
    try:
        return list(_archived(top))
    except _MALFORMED as error:
        raise ValueError(str(error)) from None


class _Reader:
    """Just enough of R's unserialize() (R 4.2.2 src/main/serialize.c) for archive.rds: XDR
    format 2 or 3; vectors, pairlists and symbols (references to them too). ALTREP and
    closures are refused: no archive.rds R writes has them."""

    _REFSXP, _NILVALUE = 255, 254
    _INTEGERS = (_LGLSXP, _INTSXP)
    _LATIN1 = 4 << 12  # the gp bits of a CHARSXP marked latin1

    def __init__(self, data: bytes) -> None:
        if not data.startswith(b"X\n"):
            raise ValueError("not R's XDR serialization")
        self.data, self.at, self.symbols = data, 2, []
        format_version = self._ints(3)[0]
        if format_version == 3:
            (length,) = self._ints(1)
            self.at += length  # the writer's native encoding, by name
        elif format_version != 2:
            raise ValueError(f"serialization format {format_version}")

    def _ints(self, count: int, code: str = "i", size: int = 4) -> tuple[Any, ...]:
        values = struct.unpack_from(f">{count}{code}", self.data, self.at)
        self.at += count * size
        return values

    def item(self) -> Any:
        (flags,) = self._ints(1)
        kind, has_attributes, has_tag = flags & 0xFF, flags & _HAS_ATTR, flags & _HAS_TAG
        if kind == self._NILVALUE:
            return None
        if kind == self._REFSXP:
            return self.symbols[(flags >> 8 or self._ints(1)[0]) - 1]
        if kind == _SYMSXP:
            self.symbols.append(self.item())
            return self.symbols[-1]
        if kind == _LISTSXP:  # a pairlist: [(tag, value), ...]
            if has_attributes:
                self.item()
            tag = self.item() if has_tag else None
            value = self.item()
            return [(tag, value), *(self.item() or [])]
        if kind == _CHARSXP:
            (length,) = self._ints(1)
            if length == -1:
                return None  # NA_character_
            text = self.data[self.at : self.at + length]
            if len(text) != length:
                raise ValueError("a string longer than the data")
            self.at += length
            return text.decode("latin-1" if flags & self._LATIN1 else "utf-8")
        return self._vector(kind, has_attributes)

    def _vector(self, kind: int, has_attributes: int) -> RObject:
        (length,) = self._ints(1)
        if kind in self._INTEGERS:
            values = list(self._ints(length))
        elif kind == _REALSXP:
            values = list(self._ints(length, "d", 8))
        elif kind in (_STRSXP, _VECSXP):
            values = [self.item() for _ in range(length)]
        else:
            raise ValueError(f"an R object of type {kind}")
        return RObject(values, dict(self.item()) if has_attributes else {})


def _archived(top: Any) -> Iterator[ArchivedFile]:
    for package, frame in zip(top.attributes["names"].values, top.values, strict=True):
        if not (PACKAGE_PATTERN.fullmatch(package or "") and isinstance(frame, RObject)):
            continue
        rows = frame.attributes.get("row.names")
        if rows is None or not all(isinstance(name, str) for name in rows.values):
            continue  # R's compact form c(NA, -n): no file names
        columns = dict(zip(frame.attributes["names"].values, frame.values, strict=True))
        unknown = RObject([None] * len(rows.values), {})
        sizes, mtimes = columns.get("size", unknown).values, columns.get("mtime", unknown).values
        file = re.compile(rf"{re.escape(package)}/({re.escape(package)}_"
                          rf"({VERSION_PATTERN.pattern})\.tar\.(?:gz|bz2|xz))")  # fmt: skip
        for name, size, mtime in zip(rows.values, sizes, mtimes, strict=True):
            if (match := file.fullmatch(name)) is not None:
                size, mtime = _known(size), _known(mtime)
                if mtime is not None and not isinstance(mtime, int | float):
                    raise TypeError(f"an mtime of {package} that is not a number")
                yield ArchivedFile(package, match[1], match[2],
                                   None if size is None else int(size), mtime)  # fmt: skip


def _known(value: Any) -> Any:
    """A number of an R vector, None for NA (a NaN, for doubles)."""
    return None if value is None or value != value else value
