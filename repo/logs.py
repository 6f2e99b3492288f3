"""Logs that never carry a token: the access log and every error message are redacted.

gunicorn's access log holds the raw URL (the token-in-path forms) and the Basic user name
(the token in `TOKEN:x-auth-token`); its error log and Flask's name the URL of a failed
request. All of them pass through `redact`.
"""

from __future__ import annotations

import logging
import re
import sys

from gunicorn.glogging import Logger

from . import tokens

REDACTED = "<redacted>"
# gunicorn decodes percent-escapes in the path it routes, but the access log writes the raw
# request line: `/%74/%72%70%2D...` authenticates as `/t/rp-...` and must be hidden as well.
_SLASH = r"(?:/|%2[Ff])"
_PATH_TOKEN = re.compile(rf"{_SLASH}(?:t|%74){_SLASH}(?:(?!{_SLASH})[^?#\s])*")
_TOKEN = re.compile(r"(?:r|%72)(?:p|%70)(?:-|%2[Dd])(?:[A-Za-z0-9]|%[0-9A-Fa-f]{2})+")
# What a log line may not carry, so a request cannot forge lines of its own (a CR/LF that a
# URL or header smuggled in).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_ATOM = re.compile(r"%\(([^)]+)\)s")
_SECRET_KEY = re.compile(r"authorization|x-auth|x_auth|cookie", re.IGNORECASE)


class CutShort(Exception):
    """Raised inside a response body to end the transfer before its last byte on purpose, so
    that the client sees a failed download: gunicorn then logs its message as one line, not
    the traceback of an unexpected error (repo.mirror.fetch.BrokenTransfer)."""


def redact(text: str) -> str:
    """`text` with every path token and anything shaped like a token replaced."""
    return _TOKEN.sub(REDACTED, _PATH_TOKEN.sub(f"/t/{REDACTED}", text))


def _escape_controls(text: str) -> str:
    return _CONTROL.sub(lambda match: ascii(match[0])[1:-1], text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with `redact` before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = _escape_controls(redact(message))
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


class RedactingLogger(Logger):
    """gunicorn's logger with the user name, URL and secret headers redacted."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        # The atoms the access log format names: an admin's format may name any header
        # ({x-auth}i) or environ value ({raw_uri}e), so whichever it names is redacted; the
        # others are never written, and redacting them all would cost a fifth of a request.
        self.logged = {key.lower() for key in _ATOM.findall(cfg.access_log_format)}
        for handler in self.error_log.handlers:
            handler.addFilter(RedactingFilter())

    def exception(self, msg, *args, **kwargs) -> None:
        """gunicorn's "Error handling request" and its traceback, but one line for a transfer
        the app cut short on purpose (gunicorn closes the connection either way)."""
        error = sys.exc_info()[1]
        if isinstance(error, CutShort):
            self.error_log.warning("Transfer cut short: %s", error)
            return
        super().exception(msg, *args, **kwargs)

    def atoms(self, resp, req, environ, request_time) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["u"] = "-" if atoms["u"] != "-" and _is_token_user(atoms["u"]) else atoms["u"]
        for key in self.logged.intersection(atoms):
            if _SECRET_KEY.search(key):
                atoms[key] = REDACTED
            elif isinstance(atoms[key], str):
                atoms[key] = redact(atoms[key])
        return atoms


def _is_token_user(user: str) -> bool:
    # The Basic user name is the token itself in the TOKEN:x-auth-token form; any user name
    # that looks like one is hidden even when mistyped.
    return user.startswith(tokens.PREFIX) or bool(_TOKEN.search(user))


def init_app(app) -> None:
    """Redact Flask's own log, which names the URL of a request that failed."""
    app.logger.addFilter(RedactingFilter())
