"""What a URL under a channel's `cran/` asks for: which contrib directory, and which file in it.

The contrib directories are the ones R's `contrib.url()` derives from `repos` (cran.md §1.1):
any well-formed one is valid, so a binary tree with no uploads still answers an empty index.
Well-formed is narrow (R versions of one or two digits each, build names of at most 40
characters), so made-up paths cannot name files the OS refuses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SOURCE_DIR = "src/contrib"
INDEX_FILES = ("PACKAGES", "PACKAGES.gz", "PACKAGES.rds")
ARCHIVE_INDEX = "Meta/archive.rds"
_MINOR = r"\d{1,2}\.\d{1,2}"
# R 4.6's linux.binary.<build> names, noble-x86_64: 40 characters at most.
_LINUX_BUILD = r"(?=[a-z0-9_-]{3,40}/)[a-z0-9]+-[a-z0-9_]+"
_CONTRIB = re.compile(
    rf"(?P<dir>src/contrib"
    rf"|bin/windows/contrib/{_MINOR}"
    rf"|bin/macosx/(?:(?:big-sur-arm64|big-sur-x86_64|sonoma-arm64)/)?contrib/{_MINOR}"
    rf"|bin/linux/{_LINUX_BUILD}/contrib/{_MINOR})"
    rf"/(?P<rest>.+)"
)
# fullmatch everywhere: `$` would also match before a trailing newline.
_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_ARCHIVED = re.compile(r"[Aa]rchive/(?P<package>[A-Za-z0-9.]{1,255})/(?P<file>[^/]+)")


@dataclass(frozen=True)
class CranPath:
    """A parsed request: `index` names an index file, else `file` is a package file (in
    `Archive/<archived_package>/` when that is set)."""

    subdir: str
    index: str | None = None
    file: str | None = None
    archived_package: str | None = None


def parse(path: str) -> CranPath | None:
    """The request `path` (below `cran/`) names, or None when it is not a repository URL."""
    match = _CONTRIB.fullmatch(path)
    if match is None:
        return None
    subdir, rest = match["dir"], match["rest"]
    if rest in INDEX_FILES or (rest == ARCHIVE_INDEX and subdir == SOURCE_DIR):
        return CranPath(subdir, index=rest)
    archived = _ARCHIVED.fullmatch(rest) if subdir == SOURCE_DIR else None
    if archived and _FILE.fullmatch(archived["file"]):
        return CranPath(subdir, file=archived["file"], archived_package=archived["package"])
    if _FILE.fullmatch(rest):
        return CranPath(subdir, file=rest)
    return None
