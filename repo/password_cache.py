"""Password checks remembered for a few minutes, so that Basic `user:password` on the API costs
one scrypt check every few minutes rather than one per request (pip asks once for each page).

An entry is an HMAC of the name, the password and the password hash it matched, under a key
made at random when the process starts: the password itself is never kept. The caller passes
the hash it has just read from the user's row, so a password changed by any process misses
the cache at once. Failed checks are never remembered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import OrderedDict

from werkzeug.security import check_password_hash


class PasswordCache:
    """The `size` most recently used successful checks, each trusted for `ttl` seconds after
    the check itself (using an entry does not extend it)."""

    def __init__(self, size: int = 1024, ttl: float = 300.0) -> None:
        self.size = size
        self.ttl = ttl
        self._key = secrets.token_bytes(32)
        self._checked: OrderedDict[bytes, float] = OrderedDict()
        # gunicorn's gthread workers answer several requests of a process at once.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._checked)

    def check(self, name: str, password: str, password_hash: str, now: float | None = None) -> bool:
        """Whether `password` matches `password_hash`: from memory when it did so less than
        `ttl` seconds before `now` (the monotonic clock), else by the slow hash check."""
        now = time.monotonic() if now is None else now
        # JSON keeps the three apart: no name and password can be cut differently to collide.
        message = json.dumps([name, password, password_hash]).encode()
        entry = hmac.new(self._key, message, hashlib.sha256).digest()
        with self._lock:
            checked = self._checked.get(entry)
            if checked is not None and now - checked < self.ttl:
                self._checked.move_to_end(entry)
                return True
        if not check_password_hash(password_hash, password):
            return False
        with self._lock:
            self._checked[entry] = now
            self._checked.move_to_end(entry)
            while len(self._checked) > self.size:
                self._checked.popitem(last=False)
        return True
