"""Fixtures of the end-to-end tests: a live gunicorn per test module, real clients in a
sandboxed environment, and Python distributions built locally (no network)."""

from __future__ import annotations

import os

import pytest

from .live import Dists, LiveServer


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    server = LiveServer(tmp_path_factory.mktemp("server") / "data")
    yield server
    server.stop()


@pytest.fixture
def client_env(tmp_path) -> dict[str, str]:
    """An environment in which pip, uv and twine see no user config and write under tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "TWINE_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(
        HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local/share"), PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", UV_NO_CONFIG="1",
        UV_CACHE_DIR=str(home / "uv-cache"), UV_PYTHON_DOWNLOADS="never", NO_COLOR="1",
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
    )  # fmt: skip
    return env


@pytest.fixture(scope="session")
def dists(tmp_path_factory) -> Dists:
    return Dists(tmp_path_factory.mktemp("dists"))
