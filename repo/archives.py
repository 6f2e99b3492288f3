"""A bounded view of a decompressing stream, for reading archives that clients upload.

tarfile skips member data by seeking (which decompresses everything skipped) and reads a pax
or GNU long-name header whole, whatever size it claims: both are bombs without these caps.
Shared by the Python and R sides, which never import each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO


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
