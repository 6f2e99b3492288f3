"""The index files of one contrib directory (PACKAGES, PACKAGES.gz, PACKAGES.rds) as
`tools::write_PACKAGES` writes them (cran.md §3.1), from entries the caller has chosen.

All three come from one list of rows so they can never disagree: R reads the .rds, pak the .gz.
The .rds keeps each value as read.dcf read it; PACKAGES folds it as R 4.2.2's write.dcf does.
"""

import gzip
import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate

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

# write.dcf(width = 0.9 * getOption("width"), indent = 0.1 * getOption("width")), with R's
# default width of 80 (R 4.2.2 base/R/dcf.R; .write_repository_package_db passes neither).
_WIDTH, _INDENT = 72, 8
_EXDENT = " " * _INDENT
# Characters some DCF reader takes for a line break (\r, \v, \f, \x1c-\x1e, \x85, U+2028/9),
# and the other control characters but tab and newline: no DESCRIPTION R wrote has one, and
# each becomes a space so that a value cannot start a field or record of its own.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
# strwrap(): paragraphs end at a line that is blank; words end at one space, tab or newline.
_PARAGRAPH = re.compile(r"\n[ \t\n]*\n")
_BLANK = re.compile(r"[ \t\n]")
_SENTENCE_END = re.compile(r"[.?!][)\"']?$")  # strwrap keeps two spaces after one
# write.dcf's escape_paragraphs(): a blank line becomes " ." and a line " .x" gets one more space.
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_DOT_LINE = re.compile(r"\n \.([^\n])")


@dataclass(frozen=True)
class Entry:
    """One package row: its DESCRIPTION fields as read.dcf reads them (continuation lines joined
    with newlines) plus MD5sum; only the standard ones are emitted."""

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
    cells = [_row(entry, columns) for entry in ordered]
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


def _row(entry: Entry, columns: list[str]) -> list[str | None]:
    get = entry.fields.get
    row = [None if (value := get(column)) is None else _clean(value) for column in columns]
    if columns[-1] == "File":
        row[-1] = None if entry.file is None else _clean(entry.file)
    return row


def _clean(value: str) -> str | None:
    """The value R's matrix would hold: newlines kept, as read.dcf joins continuation lines;
    unsafe characters made spaces; an empty value absent (NA), as .write_repository_package_db
    makes it."""
    if not (value.isascii() and value.isprintable()):  # nearly every value: no regex to run
        value = _UNSAFE.sub(" ", value)
    return value.strip(" \t\n") or None


def _record(columns: list[str], row: list[str | None]) -> str:
    return "".join(
        f"{_field(column, value)}\n" for column, value in zip(columns, row, strict=True) if value
    )


def _field(tag: str, value: str) -> str:
    """`tag: value` as write.dcf writes a field it may fold (R 4.2.2): formatDL(style = "list"),
    that is strwrap(paste0(tag, ": ", value), width = 72, exdent = 8), then escape_paragraphs.

    Every line but the first starts with a space, and none is blank, so no value can start a
    field or a record; read.dcf joins the lines again.
    """
    line = f"{tag}: {value}"
    flat = line.replace("\n", " ")
    if flat.isascii() and flat.isprintable() and "  " not in flat:
        # Nearly every value: one paragraph of ASCII words, a space or a newline apart.
        if len(flat) < _WIDTH:
            return flat
        words = flat.split(" ")
        return "\n".join(_strwrap(words, [len(word) for word in words]))
    paragraphs = _PARAGRAPH.split(line)
    if paragraphs[-1] == "":  # strsplit() drops one empty piece at the end
        paragraphs.pop()
    # A paragraph of zero-width words only would make strwrap() write an empty line, and
    # escape_paragraphs() a line of one space, which ends the record: R's own PACKAGES then
    # fails in read.dcf(). Such a paragraph (U+200B alone, say) is left out instead.
    wrapped = [lines for lines in (_strwrap(*_words(p)) for p in paragraphs) if lines]
    text = "\n\n".join("\n".join(lines) for lines in wrapped)
    if len(wrapped) == 1:
        return text  # nothing for escape_paragraphs to do
    return _DOT_LINE.sub(r"\n  .\1", _BLANK_LINE.sub("\n .\n ", text))


def _words(paragraph: str) -> tuple[list[str], list[int]]:
    """The words strwrap() keeps of one paragraph, and their widths: zero-width ones (empty
    ones between two blanks, too) go, but one right after a sentence end."""
    split = _BLANK.split(paragraph)
    if split[-1] == "":  # strsplit() again
        split.pop()
    words: list[str] = []
    widths: list[int] = []
    for i, word in enumerate(split):
        width = len(word) if word.isascii() else _width(word)
        if width or (i and _SENTENCE_END.search(split[i - 1])):
            words.append(word)
            widths.append(width)
    return words, widths


def _strwrap(words: list[str], widths: list[int]) -> list[str]:
    """The lines strwrap() makes of one paragraph's words (R 4.2.2 base/R/strwrap.R): a line
    takes the most words whose widths plus one each stay within 72 columns (64 after the
    8-space exdent), and at least one."""
    ends = list(accumulate(width + 1 for width in widths))  # strwrap's `lens`
    lines: list[str] = []
    start, used, limit = 0, 0, _WIDTH
    while start < len(words):
        end = max(bisect_right(ends, used + limit, start), start + 1)
        last = end - 1 if widths[end - 1] == 0 else end  # a line never ends in the extra space
        lines.append((_EXDENT if lines else "") + " ".join(words[start:last]))
        if end < len(words) and widths[end] == 0:  # nor does the next one start with it
            end += 1
        start, used, limit = end, ends[end - 1], _WIDTH - _INDENT
    return lines


def _width(word: str) -> int:
    """nchar(word, type = "w") in a UTF-8 locale: combining marks and format characters take no
    column (the soft hyphen takes one), East Asian wide and fullwidth ones two."""
    return sum(_char_width(char) for char in word)


def _char_width(char: str) -> int:
    category = unicodedata.category(char)
    if category in ("Mn", "Me") or (category == "Cf" and char != "\xad"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
