"""Fixtures of the end-to-end tests: a live gunicorn per test module, real clients in a
sandboxed environment, and Python distributions built locally (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .browser import launch
from .live import Dists, LiveServer, r_build, sandboxed_env
from .upstreams import BlackHole, FakeCRAN, FakePyPI
from .upstreams.cran import BINARY_TREES


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    server = LiveServer(tmp_path_factory.mktemp("server") / "data")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, for one test module (tests/e2e/browser.py)."""
    playwright, chromium = launch()
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def client_env(tmp_path) -> dict[str, str]:
    """An environment in which pip, uv and twine see no user config and write under tmp_path."""
    return sandboxed_env(tmp_path / "home")


@pytest.fixture(scope="session")
def dists(tmp_path_factory) -> Dists:
    return Dists(tmp_path_factory.mktemp("dists"))


@pytest.fixture(scope="module")
def fake_pypi():
    """A FakePyPI with no projects yet: a test adds what it needs; `reset()` between tests."""
    upstream = FakePyPI()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def r_built(tmp_path_factory) -> dict[str, Path]:
    """The fixture R packages as `R CMD build` and `R CMD INSTALL --build` made them."""
    return r_build(tmp_path_factory.mktemp("rbuilt"))


@pytest.fixture(scope="module")
def fake_cran(tmp_path_factory, r_built):
    """A FakeCRAN with abc 2.0, abcuser 1.0 and abcc 0.1-1 in src/contrib, and abcc's binary
    in the windows and macosx trees of R 4.2; `fake_cran.add(r_built["abc_2.1.tar.gz"])`
    is the new upstream release (2.0 moves to Archive/abc/)."""
    upstream = FakeCRAN(tmp_path_factory.mktemp("cran"))
    upstream.add(*(r_built[f] for f in ("abc_2.0.tar.gz", "abcuser_1.0.tar.gz",
                                        "abcc_0.1-1.tar.gz")))  # fmt: skip
    for platform in BINARY_TREES:
        upstream.add_binary(r_built["abcc_0.1-1_R_x86_64-pc-linux-gnu.tar.gz"], platform, "4.2")
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def black_hole():
    """A port that accepts connections and never answers."""
    hole = BlackHole()
    yield hole
    hole.stop()
