"""The one exception family for client mistakes and the one handler that answers them.

Every 4xx carries its message twice: in the reason phrase (twine prints only that) and in a
one-line text body (uv publish and curl print that). R prints neither, so it is logged too.
"""

from __future__ import annotations

import errno
import logging
import re
import sqlite3

log = logging.getLogger("repo")

_UNSAFE = re.compile(r"[^\x20-\x7e]")
REASON_LIMIT = 200
MiB = 1024 * 1024


class RepoError(Exception):
    """A request the server refuses, with the status and a message that names what was wrong."""

    status = 400

    def __init__(self, message: str, status: int | None = None, headers: dict | None = None,
                 code: str | None = None):  # fmt: skip
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.headers = headers or {}
        # The JSON API's stable problem code (repo.api.problems); None: the status says it.
        self.code = code


class Invalid(RepoError):
    status = 400


class Unauthorized(RepoError):
    status = 401


class Forbidden(RepoError):
    status = 403


class NotFound(RepoError):
    status = 404


class Conflict(RepoError):
    status = 409


class Gone(RepoError):
    status = 410


class TooLarge(RepoError):
    status = 413


class InsufficientStorage(RepoError):
    status = 507


DISK_FULL_NOW = "Insufficient storage: the server's disk is full"
DISK_FULL = f"{DISK_FULL_NOW}; nothing was stored"
POSTGRES_DISK_FULL = "53100"  # SQLSTATE disk_full


def disk_full(error: BaseException) -> bool:
    """True for the ways a full disk surfaces: ENOSPC/EDQUOT, SQLite's own message, and
    PostgreSQL's SQLSTATE (repo.db.PostgresError carries it)."""
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(error, sqlite3.OperationalError):
        return "disk is full" in str(error)
    return getattr(error, "sqlstate", None) == POSTGRES_DISK_FULL


def one_line(text: str, limit: int = REASON_LIMIT) -> str:
    """ASCII, no control characters, at most `limit` characters.

    gunicorn answers 500 for a reason phrase with a non-latin-1 character or CR/LF, and twine
    re-sends the whole file five times on any 5xx, so the phrase must always be safe.
    """
    cleaned = _UNSAFE.sub("?", text.replace("\r", " ").replace("\n", " ")).strip()
    return cleaned[: limit - 3] + "..." if len(cleaned) > limit else cleaned


def _too_large() -> str:
    """Which limit a 413 crossed: the whole body (an upload's, or the small one of every other
    route), or one form field held in memory."""
    from flask import request

    limit = request.max_content_length
    if limit is not None and request.content_length and request.content_length <= limit:
        field_limit = request.max_form_memory_size // MiB
        return (
            f"Form too large: limit is {field_limit} MB for a field other than a file"
            f" and {request.max_form_parts} fields"
        )
    if getattr(request, "takes_uploads", False):
        return f"File too large: limit is {limit // MiB} MB"
    return f"Request body too large: limit is {limit // MiB} MB for this URL"


def init_app(app) -> None:
    """Install the handlers that turn RepoError and werkzeug's HTTP errors into one shape."""
    from flask import current_app
    from werkzeug.exceptions import ClientDisconnected, HTTPException

    from . import db, responses

    @app.errorhandler(RepoError)
    def handle_repo_error(error: RepoError):
        log.info("refused %s: %s", error.status, one_line(error.message, 500))
        return responses.error(error.status, error.message, error.headers, error.code)

    def handle_storage_error(error: Exception):
        # A full disk is the server's trouble, not the client's: 507, and reads go on. A read
        # can need a write too (an R index not yet built for this revision): it stored nothing
        # of the client's, so it is not told so.
        from flask import request

        if not disk_full(error):
            raise error
        log.error("refused 507: %s", error)
        if request.method in ("GET", "HEAD"):
            return responses.error(507, f"{DISK_FULL_NOW}; try again later")
        return responses.error(507, DISK_FULL)

    for storage_error in (OSError, *db.OperationalError):
        app.errorhandler(storage_error)(handle_storage_error)

    @app.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException):
        if error.code == 413:
            message = _too_large()
        else:
            message = error.description or error.name
        return responses.error(error.code or 500, message)

    @app.errorhandler(ClientDisconnected)
    def handle_client_disconnected(error: ClientDisconnected):
        # werkzeug's LimitedStream turns any OSError of a body read into this 400, the timeout
        # of a pool thread's recv() too (repo.worker): that one is the client's silence.
        if not isinstance(error.__context__, TimeoutError):
            return handle_http_exception(error)
        seconds = current_app.config["BODY_TIMEOUT"]
        return handle_repo_error(
            RepoError(f"Request Timeout: the client sent nothing for {seconds} s", 408)
        )
