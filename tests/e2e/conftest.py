"""Fixtures of the end-to-end tests: a live gunicorn per test module, real clients in a
sandboxed environment, and Python distributions built locally (no network)."""

from __future__ import annotations

import pytest

from .live import Dists, LiveServer, sandboxed_env


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    server = LiveServer(tmp_path_factory.mktemp("server") / "data")
    yield server
    server.stop()


@pytest.fixture
def client_env(tmp_path) -> dict[str, str]:
    """An environment in which pip, uv and twine see no user config and write under tmp_path."""
    return sandboxed_env(tmp_path / "home")


@pytest.fixture(scope="session")
def dists(tmp_path_factory) -> Dists:
    return Dists(tmp_path_factory.mktemp("dists"))
