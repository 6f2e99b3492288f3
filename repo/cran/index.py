"""The index files of one contrib directory (PACKAGES, PACKAGES.gz, PACKAGES.rds) as
`tools::write_PACKAGES` writes them (cran.md §3.1), from entries the caller has chosen.

All three come from one list of rows so they can never disagree: R reads the .rds, pak the .gz.
"""

import gzip
import re
from dataclasses import dataclass

from repo.cran import rds

# tools:::.get_standard_repository_db_fields("source"), in R's order (unchanged R 4.0-4.5).
SOURCE_FIELDS = [
    "Package", "Version", "Priority", "Depends", "Imports", "LinkingTo", "Suggests", "Enhances",
    "License", "License_is_FOSS", "License_restricts_use", "OS_type", "Archs", "MD5sum",
    "NeedsCompilation",
]  # fmt: skip
# R's binary types drop NeedsCompilation. Built is not standard, but R 4.6's available.packages()
# requests it for binary types and pkgcache reads it to tell binaries and their R version apart;
# PPM and drat add it the same way, with write_PACKAGES(fields = "Built").
BINARY_FIELDS = [field for field in SOURCE_FIELDS if field != "NeedsCompilation"] + ["Built"]

# Control characters other than whitespace (whitespace runs become one space instead).
_CONTROL = re.compile(r"(?!\s)[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Entry:
    """One package row: its DESCRIPTION fields plus MD5sum; only the standard ones are emitted."""

    fields: dict[str, str]
    file: str | None = None  # a File: field, for names R would not guess (.tar.xz, Linux binaries)


@dataclass(frozen=True)
class IndexFiles:
    """The bytes of the three index files of one contrib directory."""

    packages: bytes  # UTF-8 DCF
    packages_gz: bytes  # the same bytes, gzip'ed
    packages_rds: bytes  # the same rows and columns as an R character matrix


def build(entries: list[Entry], binary: bool) -> IndexFiles:
    """All three index files from one list of entries (the versions to list, any order)."""
    columns = BINARY_FIELDS if binary else SOURCE_FIELDS
    if any(entry.file for entry in entries):
        columns = [*columns, "File"]  # write_PACKAGES(addFiles = TRUE) puts it after the fields
    # list.files() order in a UTF-8 locale, as CRAN lists them: case-insensitive; a stable sort,
    # so several versions of one package keep the caller's order.
    ordered = sorted(entries, key=lambda entry: _sort_key(entry.fields.get("Package", "")))
    cells = [[_clean(_value(entry, column)) for column in columns] for entry in ordered]
    names = [row[0] for row in cells if row[0]]
    if len(names) != len(cells):
        raise ValueError("every entry needs a Package field")
    packages = "\n".join(_record(columns, row) for row in cells).encode()
    return IndexFiles(
        packages=packages,
        # mtime=0: same content, same ETag; level 6 is gzip(1)'s default and 3x as fast as 9.
        packages_gz=gzip.compress(packages, compresslevel=6, mtime=0),
        packages_rds=rds.character_matrix(names, columns, cells),
    )


def _sort_key(package: str) -> tuple[str, str]:
    return package.casefold(), package


def _value(entry: Entry, column: str) -> str | None:
    return entry.file if column == "File" else entry.fields.get(column)


def _clean(value: str | None) -> str | None:
    """The value on one line: a newline could otherwise start a field or record of its own.

    Whitespace runs (newlines, tabs) become one space, which read.dcf treats the same for every
    standard field; control characters are dropped; an empty value is absent (NA), as in R.
    """
    if value is None:
        return None
    if value.isprintable() and "  " not in value and value.strip() == value:
        return value or None  # nearly every value: nothing to clean, no regex to run
    return " ".join(_CONTROL.sub("", value).split()) or None


def _record(columns: list[str], row: list[str | None]) -> str:
    # No line wrapping: write.dcf's wrapping is cosmetic, read.dcf needs none.
    return "".join(
        f"{column}: {value}\n" for column, value in zip(columns, row, strict=True) if value
    )
