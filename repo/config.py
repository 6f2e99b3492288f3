"""Configuration: the defaults and the REPO_* environment variables, in one list.

The README's configuration table is checked against ENVIRONMENT by a test.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

MB = 1024 * 1024
# The database holds password hashes and every private channel's metadata: nothing under the
# data dir, or in a backup, is for other local users (files 0600, folders 0700).
PRIVATE_UMASK = 0o077
DATABASE_FILES = ("repo.sqlite3", "repo.sqlite3-wal", "repo.sqlite3-shm")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def flag(raw: str) -> bool:
    """A yes/no setting: 1, true, yes or on; 0, false, no or off (any case)."""
    if raw.lower() not in _TRUE | _FALSE:
        raise ValueError(f"expected 1, true, yes, on, 0, false, no or off, not {raw!r}")
    return raw.lower() in _TRUE


# (environment variable, config key, parser, default, what it is)
ENVIRONMENT: list[tuple[str, str, Callable[[str], object], object, str]] = [
    ("REPO_DATA_DIR", "DATA_DIR", str, "./data", "database, blobs and secret key live here"),
    (
        "REPO_SECRET_KEY",
        "SECRET_KEY",
        str,
        None,
        "signs sessions; generated into the data dir (with PostgreSQL, into the database)",
    ),
    (
        "REPO_DATABASE_URL",
        "DATABASE_URL",
        str,
        None,
        "postgresql://USER:PASS@HOST:PORT/DB selects PostgreSQL; unset, SQLite in the data dir",
    ),
    (
        "REPO_BLOB_URL",
        "BLOB_URL",
        str,
        None,
        "s3://BUCKET/PREFIX stores blobs in S3-compatible storage; unset, the data dir's blobs/",
    ),
    (
        "REPO_BLOB_REDIRECT",
        "BLOB_REDIRECT",
        flag,
        False,
        "with S3, answer a download with a redirect to a short-lived presigned URL",
    ),
    (
        "REPO_BLOB_PUBLIC_ENDPOINT",
        "BLOB_PUBLIC_ENDPOINT",
        str,
        None,
        "the S3 endpoint as clients reach it, for those redirects (default: AWS_ENDPOINT_URL)",
    ),
    ("REPO_MAX_UPLOAD_MB", "MAX_UPLOAD_MB", int, 1024, "largest accepted upload, in MiB"),
    ("REPO_BIND", "BIND", str, "127.0.0.1:8000", "address gunicorn listens on"),
    ("REPO_WORKERS", "WORKERS", int, 2, "gunicorn worker processes"),
    ("REPO_THREADS", "THREADS", int, 8, "threads per worker (gthread)"),
    (
        "REPO_HEADER_TIMEOUT",
        "HEADER_TIMEOUT",
        int,
        10,
        "seconds a request may take to send its headers (and a body outside uploads); then 408",
    ),
    (
        "REPO_BODY_TIMEOUT",
        "BODY_TIMEOUT",
        int,
        60,
        "seconds an upload's body may send nothing; then 408",
    ),
    ("REPO_ADMIN_PASSWORD", "ADMIN_PASSWORD", str, None, "password for the first admin user"),
    (
        "REPO_AUTH_FAILURE_LIMIT",
        "AUTH_FAILURE_LIMIT",
        int,
        10,
        "failed authentications per address in 5 minutes before 429 (0: never)",
    ),
    (
        "REPO_TRUSTED_PROXIES",
        "TRUSTED_PROXIES",
        int,
        0,
        "reverse proxies in front whose X-Forwarded-For is trusted",
    ),
    (
        "REPO_SECURE_COOKIES",
        "SECURE_COOKIES",
        flag,
        False,
        "send the web UI's session cookie over HTTPS only; turn on behind TLS",
    ),
]


def from_environ(environ: os._Environ | dict = os.environ) -> dict:
    """The configuration for this process: defaults overridden by REPO_* variables."""
    config = {}
    for variable, key, parse, default, _ in ENVIRONMENT:
        raw = environ.get(variable)
        config[key] = parse(raw) if raw not in (None, "") else default
    return config


def keep_private(data_dir: str | os.PathLike) -> None:
    """Make what this process writes from now on private to its user, and close an existing
    data dir that an older version (or another umask) left readable."""
    os.umask(PRIVATE_UMASK)
    path = Path(data_dir)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    for name in DATABASE_FILES:
        if (path / name).exists():
            (path / name).chmod(0o600)


def finish(config: dict) -> dict:
    """Derive Flask's settings from ours; generate the secret key once, never default it:
    into the data dir, or with PostgreSQL into the database that every server shares
    (repo.db.init_app takes it there)."""
    data_dir = Path(config["DATA_DIR"]).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    config["DATA_DIR"] = str(data_dir)
    config.setdefault("DATABASE", str(data_dir / "repo.sqlite3"))
    config.setdefault("BLOB_DIR", str(data_dir / "blobs"))
    if not config.get("SECRET_KEY") and not config.get("DATABASE_URL"):
        config["SECRET_KEY"] = _stored_secret(data_dir / "secret_key")
    config["MAX_CONTENT_LENGTH"] = config["MAX_UPLOAD_MB"] * MB
    # twine sends the whole README as the `description` field: Flask's 500 kB default would
    # refuse a package with a long README with 413 before our code runs.
    config["MAX_FORM_MEMORY_SIZE"] = 16 * MB
    config["MAX_FORM_PARTS"] = 10_000
    # The web UI's session: out of reach of scripts, not sent on cross-site POSTs, and over
    # HTTPS only when asked (`make serve` is plain http on localhost).
    config["SESSION_COOKIE_HTTPONLY"] = True
    config["SESSION_COOKIE_SAMESITE"] = "Lax"
    config["SESSION_COOKIE_SECURE"] = bool(config.get("SECURE_COOKIES"))
    config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=12)
    return config


def _stored_secret(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        secret = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secret)
        return secret
