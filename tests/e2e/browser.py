"""Debian's Chromium, driven headless by Playwright for the browser tests, and the
screenshots they save. A missing browser or Playwright fails the test naming the install
step (`make test`), never skips it."""

from __future__ import annotations

from pathlib import Path

import pytest

from .. import conftest

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # launch() fails every test then, naming the install step
    expect = sync_playwright = None

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox (containers and root lack user namespaces), and nothing that reaches the network.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]  # fmt: skip
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}


# The page is no wider than the screen (only tables scroll, inside their region); if it is,
# the elements that stick out: outside a table's region, or positioned out of its clipping.
_WIDER_THAN_SCREEN = """() => document.documentElement.scrollWidth <= window.innerWidth ? [] :
    [...document.querySelectorAll("body *")]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5
                 && (!e.closest(".scroll") || getComputedStyle(e).position === "absolute"))
    .map(e => `${e.tagName.toLowerCase()}.${e.className}#${e.id}`)"""


def launch():
    """(playwright, browser): Playwright started and Chromium launched headless."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    if sync_playwright is None:
        pytest.fail("Playwright is missing: `make test` installs it (pip install -e '.[test]')")
    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
    return playwright, browser


def screenshots(page, name: str) -> None:
    """Save full-page screenshots of the page at desktop and phone widths, and check that at
    phone width nothing but a table's own scroll region is wider than the screen."""
    # `make test` runs the suite on both stacks at once: each saves its own.
    folder = ARTIFACTS / ("screenshots-scale" if conftest.STACK.scale else "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=str(folder / f"{name}-{label}.png"), full_page=True)
        wider = page.evaluate(_WIDER_THAN_SCREEN)
        assert not wider, f"{name} is wider than a {label} screen: {wider}"
    page.set_viewport_size(DESKTOP)
