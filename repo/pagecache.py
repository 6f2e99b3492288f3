"""Rendered index pages kept in each worker's memory, keyed on what they are rendered from.

A key carries the channel's revision, so a page is never stale: an upload bumps the revision
and the next request renders anew; old pages just age out, least recently used first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

DEFAULT_LIMIT = 8 * 1024 * 1024


class PageCache:
    """At most `limit` bytes of pages; safe to share between a worker's threads."""

    def __init__(self, limit: int = DEFAULT_LIMIT):
        self.limit = limit
        self._pages: OrderedDict[Hashable, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def peek(self, key: Hashable) -> bytes | None:
        """The page for `key` if it is cached; nothing is rendered."""
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
            return page

    def get(self, key: Hashable, render: Callable[[], str | bytes]) -> bytes:
        """The page for `key`, rendered (outside the lock) only when it is not cached."""
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
                return page
        rendered = render()
        page = rendered.encode("utf-8") if isinstance(rendered, str) else rendered
        if len(page) <= self.limit:
            with self._lock:
                if key not in self._pages:
                    self._pages[key] = page
                    self._size += len(page)
                while self._size > self.limit:
                    _, dropped = self._pages.popitem(last=False)
                    self._size -= len(dropped)
        return page
