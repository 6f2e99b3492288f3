"""Configuration: the defaults and the REPO_* environment variables, in one list.

The README's configuration table is checked against ENVIRONMENT by a test.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

MB = 1024 * 1024

# (environment variable, config key, parser, default, what it is)
ENVIRONMENT: list[tuple[str, str, type, object, str]] = [
    ("REPO_DATA_DIR", "DATA_DIR", str, "./data", "database, blobs and secret key live here"),
    ("REPO_SECRET_KEY", "SECRET_KEY", str, None, "signs sessions; generated into the data dir"),
    ("REPO_MAX_UPLOAD_MB", "MAX_UPLOAD_MB", int, 1024, "largest accepted upload, in MiB"),
    ("REPO_BIND", "BIND", str, "127.0.0.1:8000", "address gunicorn listens on"),
    ("REPO_WORKERS", "WORKERS", int, 2, "gunicorn worker processes"),
    ("REPO_THREADS", "THREADS", int, 8, "threads per worker (gthread)"),
    ("REPO_ADMIN_PASSWORD", "ADMIN_PASSWORD", str, None, "password for the first admin user"),
]


def from_environ(environ: os._Environ | dict = os.environ) -> dict:
    """The configuration for this process: defaults overridden by REPO_* variables."""
    config = {}
    for variable, key, parse, default, _ in ENVIRONMENT:
        raw = environ.get(variable)
        config[key] = parse(raw) if raw not in (None, "") else default
    return config


def finish(config: dict) -> dict:
    """Derive Flask's settings from ours; generate the secret key once, never default it."""
    data_dir = Path(config["DATA_DIR"]).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    config["DATA_DIR"] = str(data_dir)
    config.setdefault("DATABASE", str(data_dir / "repo.sqlite3"))
    config.setdefault("BLOB_DIR", str(data_dir / "blobs"))
    if not config.get("SECRET_KEY"):
        config["SECRET_KEY"] = _stored_secret(data_dir / "secret_key")
    config["MAX_CONTENT_LENGTH"] = config["MAX_UPLOAD_MB"] * MB
    # twine sends the whole README as the `description` field: Flask's 500 kB default would
    # refuse a package with a long README with 413 before our code runs.
    config["MAX_FORM_MEMORY_SIZE"] = 16 * MB
    config["MAX_FORM_PARTS"] = 10_000
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
