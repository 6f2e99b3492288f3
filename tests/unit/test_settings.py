"""The settings an admin gives in the environment: the secret key (given, or generated once
and kept, so sessions survive a restart) and the trusted reverse proxies. With PostgreSQL the
generated key is the database's (test_postgres.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from repo import accounts, config
from repo.db import get_db

from ..conftest import make_app, restarted
from .webui import Visitor, text


# The key file is the SQLite data dir's: test_postgres.py has the database's shared key.
@pytest.mark.embedded_only
def test_a_generated_secret_key_is_kept_private_and_reused(tmp_path):
    first = make_app(tmp_path / "data")
    second = make_app(tmp_path / "data")

    key_file = tmp_path / "data" / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"] == key_file.read_text()
    assert len(key_file.read_text()) >= 64


def test_a_session_survives_a_restart_of_the_server(tmp_path):
    first = make_app(tmp_path / "data")
    with first.app_context():
        accounts.create_user(get_db(), "alice", "alice-password")
    visitor = Visitor(first.test_client())
    visitor.login("alice")
    cookie = visitor.client.get_cookie("session")

    again = restarted(first).test_client()
    again.set_cookie(cookie.key, cookie.value)

    assert "Signed in as <strong>alice</strong>" in text(again.get("/tokens"))


def test_repo_secret_key_is_used_and_nothing_is_generated(tmp_path, monkeypatch):
    monkeypatch.setenv("REPO_SECRET_KEY", "a-secret-the-admin-chose")

    app = make_app(tmp_path / "data")

    assert app.config["SECRET_KEY"] == "a-secret-the-admin-chose"
    assert not (tmp_path / "data" / "secret_key").exists()


@pytest.fixture
def channel_page():
    """The owner's channel page with its copyable commands, seen through a proxy that says it
    is https://repo.example.org, with `proxies` trusted."""

    def page(tmp_path: Path, proxies: int) -> str:
        app = make_app(tmp_path / f"p{proxies}", TRUSTED_PROXIES=proxies)
        with app.app_context():
            owner = accounts.create_user(get_db(), "alice", "alice-password")
            accounts.create_channel(get_db(), "ch", owner)
        visitor = Visitor(app.test_client())
        visitor.login("alice")
        headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https",
                   "X-Forwarded-Host": "repo.example.org"}  # fmt: skip
        return text(visitor.get("/channels/ch", headers=headers))

    return page


def test_behind_a_trusted_proxy_commands_name_the_public_url(tmp_path, channel_page):
    page = channel_page(tmp_path, proxies=1)

    assert "https://repo.example.org/api/repo/ch" in page


def test_without_trusted_proxies_forwarded_headers_are_ignored(tmp_path, channel_page):
    page = channel_page(tmp_path, proxies=0)

    assert "repo.example.org" not in page
    assert "http://localhost/api/repo/ch" in page


# The files it closes are SQLite's database.
@pytest.mark.embedded_only
def test_keep_private_closes_an_old_data_dir(tmp_path):
    data_dir = tmp_path / "old"
    make_app(data_dir)
    os.chmod(data_dir, 0o755)
    os.chmod(data_dir / "repo.sqlite3", 0o644)
    umask = os.umask(0o022)
    try:
        config.keep_private(data_dir)
        assert os.umask(0o022) == config.PRIVATE_UMASK
    finally:
        os.umask(umask)

    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "repo.sqlite3").stat().st_mode) == 0o600
