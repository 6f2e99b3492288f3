"""A channel's settings in a real Chromium against a real gunicorn: its owner describes it,
makes it public (an anonymous visitor then sees it), and deletes a channel by typing its name.
"""

from __future__ import annotations

import pytest

from .browser import DESKTOP, expect, screenshots
from .test_ui_browser import create_channel, sign_in

PASSWORD = "alice-password"


@pytest.fixture(scope="module")
def alice(browser, live_server):
    live_server.cli("user", "create", "alice", "--password", PASSWORD)
    context = browser.new_context(viewport=DESKTOP, base_url=live_server.url)
    page = context.new_page()
    sign_in(page, "alice", PASSWORD)
    yield page
    context.close()


def test_the_owner_describes_the_channel_and_makes_it_public(alice, browser, live_server):
    create_channel(alice, "team", public=False)
    alice.get_by_label("Description").fill("Builds of the team <b>nightly</b>")
    alice.get_by_role("radio", name="Public: anybody can read it").check()
    alice.get_by_role("button", name="Save settings").click()
    expect(alice.get_by_role("status")).to_have_text("Saved the settings of channel 'team'")
    expect(alice.locator(".channel-description")).to_have_text("Builds of the team <b>nightly</b>")
    screenshots(alice, "channel-settings")

    visitor = browser.new_context(viewport=DESKTOP, base_url=live_server.url).new_page()
    visitor.goto("/channels/team")
    expect(visitor.locator(".channel-description")).to_have_text(
        "Builds of the team <b>nightly</b>")  # fmt: skip
    expect(visitor.get_by_role("heading", name="Settings")).to_have_count(0)
    visitor.context.close()
    assert live_server.query("SELECT public, description FROM channels WHERE name = 'team'") == [
        (1, "Builds of the team <b>nightly</b>")]  # fmt: skip


def test_deleting_a_channel_takes_its_name_typed(alice, live_server):
    create_channel(alice, "scratch", public=False)
    alice.get_by_label("Type scratch to confirm").fill("scratc")
    alice.get_by_role("button", name="Delete channel scratch").click()
    refusal = "Type the channel's name, scratch, to delete it"
    expect(alice.get_by_role("alert")).to_have_text(refusal)
    assert live_server.query("SELECT count(*) FROM channels WHERE name = 'scratch'") == [(1,)]

    alice.get_by_label("Type scratch to confirm").fill("scratch")
    alice.get_by_role("button", name="Delete channel scratch").click()
    expect(alice.get_by_role("status")).to_have_text("Deleted channel 'scratch' and its 0 files")
    expect(alice).to_have_url(f"{live_server.url}/channels")
    assert live_server.query("SELECT count(*) FROM channels WHERE name = 'scratch'") == [(0,)]
    assert alice.goto("/channels/scratch").status == 404
