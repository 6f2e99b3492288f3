"""Fixtures shared by unit and e2e tests: the app on a fresh data dir, and a `repo` helper
that makes users, channels and tokens the way an admin would."""

from __future__ import annotations

import contextvars
import os
import sqlite3
import tempfile
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from repo import accounts, create_app
from repo.db import copy_to_sqlite, get_db, transaction

from . import stacks

TESTS = Path(__file__).parent
# Tests make many failed authentications from one address on purpose; throttling has tests
# of its own.
UNTHROTTLED = {"AUTH_FAILURE_LIMIT": 0}


def expired_token(db, user_id: int, *args, **options) -> str:
    """A token whose time ran out a second ago: create_token takes no expiry in the past."""
    token_id, secret = accounts.create_token(db, user_id, *args, expires_in=timedelta(seconds=1),
                                             **options)  # fmt: skip
    past = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with transaction(db):
        db.execute("UPDATE tokens SET expires = ? WHERE id = ?", (past, token_id))
    return secret


def dump(db) -> str:
    """Every row of every table as SQL text, on either engine (sqlite3's iterdump of a copy)."""
    with tempfile.TemporaryDirectory() as scratch:
        copy_to_sqlite(db, Path(scratch) / "copy.sqlite3")
        with closing(sqlite3.connect(Path(scratch) / "copy.sqlite3")) as copy:
            return "\n".join(copy.iterdump())


class OwnContextClient(FlaskClient):
    """The test client, with each request in an app context of its own as in production:
    never in the one a test holds open around it, so `g` and the teardown are per request."""

    def open(self, *args, **kwargs):
        return contextvars.Context().run(super().open, *args, **kwargs)


def pytest_addoption(parser):
    parser.addoption(
        "--stack", choices=stacks.STACKS, default="embedded",
        help="embedded: SQLite and a blob folder; scale: PostgreSQL and S3 (started here)",
    )  # fmt: skip


def pytest_configure(config):
    """Tests run on their own settings: a developer's or CI's REPO_* variables reach neither
    the apps the unit tests make nor the servers the e2e tests start."""
    for name in [name for name in os.environ if name.startswith("REPO_")]:
        del os.environ[name]
    Flask.test_client_class = OwnContextClient
    global STACK
    STACK = stacks.Stack(config.getoption("--stack"), Path(tempfile.mkdtemp(prefix="repo-stacks-")))


def pytest_unconfigure(config):
    STACK.stop()


STACK: stacks.Stack


def make_app(data_dir: Path, **settings) -> Flask:
    """An app on a fresh data dir, on the stack this run tests (a new database and bucket of
    its own on `scale`): what every test that needs an app builds it with."""
    return create_app({"DATA_DIR": str(data_dir), "TESTING": True, **STACK.config(), **settings})


def restarted(app: Flask, **settings) -> Flask:
    """The same server started again: an app on `app`'s data dir, database and bucket."""
    same = {key: app.config[key] for key in ("DATA_DIR", "DATABASE_URL", "BLOB_URL")}
    return create_app({"TESTING": True, **same, **settings})


def pytest_collection_modifyitems(config, items):
    """Every test lives in unit/ or e2e/: the folder says whether a live server is involved.
    On the scale stack, the tests meant for the embedded pass alone (embedded_only: SQLite or
    the blob folder themselves, the zipapp, what sets up its own PostgreSQL and S3 on either
    stack) are deselected: they are not skipped, since they are not meant to run there."""
    for item in items:
        folder = Path(item.fspath).relative_to(TESTS).parts[0]
        if folder not in ("unit", "e2e"):
            raise pytest.UsageError(f"{item.nodeid}: tests belong in tests/unit or tests/e2e")
        item.add_marker(getattr(pytest.mark, folder))
    if STACK.scale:
        embedded = [item for item in items if item.get_closest_marker("embedded_only")]
        if embedded:
            config.hook.pytest_deselected(items=embedded)
            items[:] = [item for item in items if item not in embedded]


@pytest.fixture(autouse=True)
def _drop_the_tests_databases():
    """On the scale stack, drop the databases a test made once it is done, connections and
    all: a run makes one per app, and the cluster's connections and disk are finite. Those a
    module's fixture made (before this runs) live on with it."""
    if not STACK.scale:
        yield
        return
    cluster = STACK.postgres
    made = len(cluster.made)
    yield
    for url in cluster.made[made:]:
        cluster.drop(url)


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path / "data", **UNTHROTTLED)
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@dataclass
class Made:
    """A user with a channel of their own and a token for it."""

    user: str
    user_id: int
    channel: str
    channel_id: int


class RepoHelper:
    """Makes accounts directly in the database of an app (flaskr's AuthActions)."""

    def __init__(self, db):
        self.db = db

    def user(self, name: str, admin: bool = False) -> int:
        return accounts.create_user(self.db, name, f"{name}-password", admin)

    def channel(self, name: str, owner_id: int, public: bool = False) -> int:
        return accounts.create_channel(self.db, name, owner_id, public)

    def token(self, user_id: int, channel_id: int | None = None, scope: str | None = None,
              **options) -> str:  # fmt: skip
        return accounts.create_token(self.db, user_id, channel_id, scope, **options)[1]

    def expired_token(self, user_id: int) -> str:
        return expired_token(self.db, user_id)

    def owner_with_channel(self, user: str, channel: str, public: bool = False) -> Made:
        user_id = self.user(user)
        return Made(user, user_id, channel, self.channel(channel, user_id, public))


@pytest.fixture
def repo(app):
    return RepoHelper(get_db())
