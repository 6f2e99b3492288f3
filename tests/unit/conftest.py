"""Fixtures of the in-process tests: an uploader's credential, and an app with a small limit."""

from __future__ import annotations

import functools

import pytest
from werkzeug.security import generate_password_hash

from repo import accounts
from repo.db import get_db

from ..conftest import make_app
from .apicalls import Api
from .builders import token_auth
from .webui import Visitor


@pytest.fixture
def owner(repo):
    """The Basic header of a write token for the channel 'ch', owned by alice."""
    made = repo.owner_with_channel("alice", "ch")
    return token_auth(repo.token(made.user_id, made.channel_id, "write"))


@pytest.fixture
def small(tmp_path):
    """An app that takes uploads of at most 1 MB, with a write token for its channel 'ch'."""
    app = make_app(tmp_path / "small", MAX_UPLOAD_MB=1)
    with app.app_context():
        db = get_db()
        user_id = accounts.create_user(db, "alice", "alice-password")
        channel_id = accounts.create_channel(db, "ch", user_id)
        _, secret = accounts.create_token(db, user_id, channel_id, "write")
        yield app, token_auth(secret)


@pytest.fixture
def visitor(client):
    """Somebody using the web UI: `visitor.login("alice")`, `visitor.post(url, field=value)`."""
    return Visitor(client)


@pytest.fixture
def fast_passwords(monkeypatch):
    """Cheap password hashes (one PBKDF2 round instead of scrypt's 0.1 s) for tests that make
    many users and sign-ins but are not about hashing."""
    cheap = functools.partial(generate_password_hash, method="pbkdf2:sha256:1")
    monkeypatch.setattr(accounts, "generate_password_hash", cheap)


@pytest.fixture
def api(app, client):
    """The JSON API, each answer checked against the OpenAPI document (tests/unit/apicalls.py)."""
    return Api(app, client)
