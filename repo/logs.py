"""Logs that never carry a token: the access log and every error message are redacted.

gunicorn's access log holds the raw URL (the token-in-path forms) and the Basic user name
(the token in `TOKEN:x-auth-token`); its error log and Flask's name the URL of a failed
request. All of them pass through `redact`.
"""

from __future__ import annotations

import logging
import re

from gunicorn.glogging import Logger

from . import tokens

REDACTED = "<redacted>"
_PATH_TOKEN = re.compile(r"/t/[^/?#\s]*")
_TOKEN = re.compile(rf"{re.escape(tokens.PREFIX)}[A-Za-z0-9]+")
_ATOM = re.compile(r"%\(([^)]+)\)s")
_SECRET_KEY = re.compile(r"authorization|x-auth|x_auth|cookie", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with every path token and anything shaped like a token replaced."""
    return _TOKEN.sub(REDACTED, _PATH_TOKEN.sub(f"/t/{REDACTED}", text))


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with `redact` before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
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
