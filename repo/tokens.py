"""The token format: `rp-`, 43 random base62 characters (256 bits), a 6-character checksum.

Only `[A-Za-z0-9-]`, because conda and other tools cut a path token at any other character;
the prefix lets secret scanners spot a leaked token, and the CRC32 checksum refuses a
mistyped one without a database lookup. Only the sha256 of a token is ever stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import zlib

PREFIX = "rp-"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BODY_LENGTH = 43
CHECKSUM_LENGTH = 6
SHAPE = re.compile(rf"{PREFIX}[0-9A-Za-z]{{{BODY_LENGTH + CHECKSUM_LENGTH}}}")


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def generate() -> str:
    """A new random token."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    return f"{PREFIX}{body}{_checksum(body)}"


def well_formed(token: str) -> bool:
    """True when `token` has our shape and its checksum matches."""
    if not SHAPE.fullmatch(token):
        return False
    body = token[len(PREFIX) : len(PREFIX) + BODY_LENGTH]
    return secrets.compare_digest(_checksum(body), token[-CHECKSUM_LENGTH:])


def digest(token: str) -> str:
    """What the database stores and looks tokens up by."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()
