"""What both archive parsers share: a bounded view of a decompressing stream, and the check that
every member of an uploaded archive is safe to unpack, whichever client unpacks it.

tarfile skips member data by seeking (which decompresses everything skipped) and reads a pax
or GNU long-name header whole, whatever size it claims: both are bombs without these caps.
We never extract, but pip, older tarfile users and R's `untar()` unpack what we serve, and R's
internal `untar()` follows a symlink out of its folder. Shared by the Python and R sides, which
never import each other.
"""

from __future__ import annotations

import re
import stat
import tarfile
import zipfile
from collections.abc import Callable
from typing import BinaryIO

# The kinds of member MemberCheck is told about.
FILE = "file"
DIRECTORY = "directory"
SYMLINK = "symlink"
HARDLINK = "hard link"
CHAR_DEVICE = "character device"
BLOCK_DEVICE = "block device"
FIFO = "fifo"
SOCKET = "socket"
UNKNOWN = "unknown"
# Never unpacked safely, and no package needs one; tarfile unpacks an unknown type as a file.
_SPECIAL = {CHAR_DEVICE: "a character device", BLOCK_DEVICE: "a block device", FIFO: "a fifo",
            SOCKET: "a socket", UNKNOWN: "of an unknown type"}  # fmt: skip
_TAR_KINDS = {tarfile.DIRTYPE: DIRECTORY, tarfile.SYMTYPE: SYMLINK, tarfile.LNKTYPE: HARDLINK,
              tarfile.CHRTYPE: CHAR_DEVICE, tarfile.BLKTYPE: BLOCK_DEVICE,
              tarfile.FIFOTYPE: FIFO}  # fmt: skip
_ZIP_KINDS = {stat.S_IFLNK: SYMLINK, stat.S_IFCHR: CHAR_DEVICE, stat.S_IFBLK: BLOCK_DEVICE,
              stat.S_IFIFO: FIFO, stat.S_IFSOCK: SOCKET}  # fmt: skip
# A Windows drive (C:, C:x, C:/x) in any component: ntpath.join restarts at it.
_DRIVE = re.compile(r"[A-Za-z]:")
_LINK = ""  # marks a symlink in MemberCheck's tree: never a component, _parts drops empty ones


class BoundedStream:
    """Refuses to unpack past `budget` bytes, or to hand out one read over `read_cap` bytes,
    raising what `refuse(reason)` makes of it (each side words its own 400)."""

    def __init__(self, stream: BinaryIO, budget: int, read_cap: int,
                 refuse: Callable[[str], Exception], over_budget: str) -> None:  # fmt: skip
        self._stream = stream
        self._budget = budget
        self._read_cap = read_cap
        self._refuse = refuse
        self._over_budget = over_budget

    def read(self, size: int) -> bytes:
        if size > self._read_cap:
            raise self._refuse("tar header or member too large")
        if self._stream.tell() + size > self._budget:
            raise self._refuse(self._over_budget)
        return self._stream.read(size)

    def seek(self, offset: int) -> int:
        if offset > self._budget:
            raise self._refuse(self._over_budget)
        return self._stream.seek(offset)

    def tell(self) -> int:
        return self._stream.tell()


def tar_kind(member: tarfile.TarInfo) -> str:
    """The kind of a tar member, for MemberCheck."""
    return FILE if member.isreg() else _TAR_KINDS.get(member.type, UNKNOWN)


def zip_kind(info: zipfile.ZipInfo) -> str:
    """The kind of a zip entry, for MemberCheck: Info-ZIP keeps a unix mode in external_attr."""
    special = _ZIP_KINDS.get(stat.S_IFMT(info.external_attr >> 16))
    return special or (DIRECTORY if info.is_dir() else FILE)


class MemberCheck:
    """Fed every member of one archive in order, refuses (through `refuse(reason)`, naming the
    member with `shown(name)`) whatever could land outside the folder it is unpacked into.

    That is: names with `..`, a leading `/`, a drive, a backslash or a NUL; devices, fifos,
    sockets; members below a symlink; symlinks (when `links` is false, as for zips) and links
    whose target is absolute or outside the link's top directory.
    """

    def __init__(self, refuse: Callable[[str], Exception], shown: Callable[[str], str],
                 links: bool = True) -> None:  # fmt: skip
        self._refuse = refuse
        self._shown = shown
        self._links = links
        self._symlinks: dict[str, dict] = {}  # a tree of path components

    def check(self, name: str, kind: str, target: str = "") -> None:
        """Refuse member `name` of `kind` (one of this module's kinds; `target` for a link)."""
        if _unsafe(name):
            raise self._refuse(f"unsafe member name '{self._shown(name)}'")
        if kind in _SPECIAL:
            raise self._refuse(f"member '{self._shown(name)}' is {_SPECIAL[kind]}")
        parts = _parts(name)
        self._not_below_a_symlink(name, parts)
        if kind == SYMLINK and not self._links:
            raise self._refuse(f"member '{self._shown(name)}' is a symlink")
        if kind == SYMLINK:
            self._check_target(name, parts, target, _symlink_target(parts, target))
            node = self._symlinks
            for part in parts:
                node = node.setdefault(part, {})
            node[_LINK] = {}
        elif kind == HARDLINK:  # tar names a hard link's target from the archive's root
            resolved = None if _unsafe(target) else _parts(target)
            self._check_target(name, parts, target, resolved)

    def _not_below_a_symlink(self, name: str, parts: list[str]) -> None:
        """Unpacking `abc/evil/pwned` after `abc/evil -> /tmp` writes into /tmp (R's untar)."""
        node: dict[str, dict] | None = self._symlinks
        for depth, part in enumerate(parts[:-1], 1):
            if (node := node.get(part)) is None:
                return
            if _LINK in node:
                link = self._shown("/".join(parts[:depth]))
                raise self._refuse(f"member '{self._shown(name)}' is below the symlink '{link}'")

    def _check_target(
        self, name: str, parts: list[str], target: str, resolved: list[str] | None
    ) -> None:
        """A link must point at its own top directory or below it."""
        if not parts or not resolved or resolved[0] != parts[0]:
            shown, to = self._shown(name), self._shown(target)
            raise self._refuse(f"link '{shown}' -> '{to}' points outside its top directory")


def _unsafe(path: str, up: bool = False) -> bool:
    """True for a path that names a place of its own on some system, whatever folder it is in;
    `..` is allowed when `up`."""
    if "\0" in path or "\\" in path or path.startswith("/"):
        return True
    return any(_unsafe_part(part) for part in path.split("/") if not (up and part == ".."))


def _unsafe_part(part: str) -> bool:
    """A drive (C:, C:x: ntpath.join restarts there), `..`, or a name Windows trims to `..` or
    nothing (it drops trailing dots and spaces)."""
    return bool(_DRIVE.match(part)) or (part not in ("", ".") and not part.rstrip(". "))


def _parts(path: str) -> list[str]:
    """The components of a relative path, without empty ones and `.`."""
    return [part for part in path.split("/") if part not in ("", ".")]


def _symlink_target(parts: list[str], target: str) -> list[str] | None:
    """Where symlink `parts` points, or None when that depends on more than the path's text.

    `..` may only lead the target (`../README.md`): one after a name would climb out of what
    that name is, and if it is a symlink too, that is not the name's parent.
    """
    if not target or _unsafe(target, up=True):
        return None
    resolved, climbing = parts[:-1], True
    for part in _parts(target):
        if part != "..":
            resolved.append(part)
            climbing = False
        elif not climbing or not resolved:
            return None
        else:
            resolved.pop()
    return resolved
