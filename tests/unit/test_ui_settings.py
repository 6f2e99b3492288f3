"""A channel's settings in the web UI, for its owners: the description (shown as text), the
privacy, and deleting the channel once its name is typed."""

from __future__ import annotations

import pytest
from markupsafe import escape

from repo import accounts
from repo.db import get_db

from .builders import twine_form
from .test_ui_channels import SCRIPT, upload
from .webui import Visitor, text

pytestmark = pytest.mark.usefixtures("fast_passwords")


@pytest.fixture
def alice(repo, visitor):
    """alice, signed in, owns the private channel 'secret' (test_ui_channels.upload's)."""
    repo.owner_with_channel("alice", "secret")
    visitor.login("alice")
    return visitor


def channel() -> dict | None:
    row = accounts.find_channel(get_db(), "secret")
    return None if row is None else {"public": row["public"], "description": row["description"]}


def as_member(app, repo, role: str) -> Visitor:
    db = get_db()
    user = repo.user(f"{role}-user")
    accounts.grant(db, accounts.find_channel(db, "secret")["id"], user, role)
    member = Visitor(app.test_client())
    member.login(f"{role}-user")
    return member


def test_the_owner_sets_the_description_and_makes_the_channel_public(alice):
    response = alice.post("/channels/secret/settings", description=f"  Team builds {SCRIPT}\n",
                          visibility="public")  # fmt: skip
    assert response.status_code == 303
    assert response.headers["Location"] == "/channels/secret#settings"
    assert channel() == {"public": 1, "description": f"Team builds {SCRIPT}"}
    page = text(alice.get("/channels/secret"))
    assert "Saved the settings of channel &#39;secret&#39;" in page
    assert f'<p class="channel-description">Team builds {escape(SCRIPT)}</p>' in page
    assert SCRIPT not in page
    assert "Team builds" in text(Visitor(alice.client.application.test_client()).get(
        "/channels/secret"))  # fmt: skip


def test_making_a_public_channel_private_hides_it_from_anonymous_visitors(app, alice):
    alice.post("/channels/secret/settings", description="", visibility="public")
    anonymous = Visitor(app.test_client())
    assert anonymous.get("/channels/secret").status_code == 200
    alice.post("/channels/secret/settings", description="", visibility="private")
    assert anonymous.get("/channels/secret").status_code == 404


def test_a_field_the_form_leaves_out_stays_as_it_was(alice):
    alice.post("/channels/secret/settings", description="kept", visibility="public")
    alice.post("/channels/secret/settings", description="changed")
    assert channel() == {"public": 1, "description": "changed"}
    alice.post("/channels/secret/settings", visibility="private")
    assert channel() == {"public": 0, "description": "changed"}


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"description": "x" * 2001}, "Description too long: at most 2000 characters"),
        ({"visibility": "all"}, "Unknown visibility &#39;all&#39;: use public or private"),
    ],
)
def test_a_refused_setting_is_shown_on_the_page_and_changes_nothing(alice, fields, message):
    response = alice.post("/channels/secret/settings", **fields)
    assert response.status_code == 303
    assert message in text(alice.get("/channels/secret"))
    assert channel() == {"public": 0, "description": ""}


def test_the_settings_show_the_current_values_to_owners_only(app, repo, alice):
    alice.post("/channels/secret/settings", description="About <this>", visibility="public")
    page = text(alice.get("/channels/secret"))
    assert '<h2 id="settings">Settings</h2>' in page
    assert ">About &lt;this&gt;</textarea>" in page
    assert 'value="public" checked' in page and 'value="private">' in page
    writer = text(as_member(app, repo, "write").get("/channels/secret"))
    assert 'id="settings"' not in writer and "Delete channel" not in writer


@pytest.mark.parametrize("role", ["read", "write"])
@pytest.mark.parametrize("action", ["settings", "delete"])
def test_members_who_do_not_own_the_channel_may_not_change_it(app, repo, alice, role, action):
    member = as_member(app, repo, role)
    response = member.post(f"/channels/secret/{action}", description="mine",
                           visibility="public", confirm="secret")  # fmt: skip
    assert response.status_code == 403
    assert "Only a member with the role owner in channel &#39;secret&#39;" in text(response)
    assert channel() == {"public": 0, "description": ""}


@pytest.mark.parametrize("action", ["settings", "delete"])
def test_strangers_and_anonymous_visitors_may_not_change_a_channel(app, repo, alice, action):
    repo.user("mallory")
    mallory = Visitor(app.test_client())
    mallory.login("mallory")
    assert mallory.post(f"/channels/secret/{action}", confirm="secret").status_code == 404
    anonymous = Visitor(app.test_client()).post(f"/channels/secret/{action}", confirm="secret")
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login")
    assert channel() is not None


def test_a_form_without_its_csrf_token_changes_nothing(alice):
    response = alice.client.post("/channels/secret/delete", data={"confirm": "secret"})
    assert response.status_code == 400 and channel() is not None


@pytest.mark.parametrize("typed", ["", "secre", "SECRET", "other"])
def test_deleting_needs_the_channels_name_typed(alice, typed):
    response = alice.post("/channels/secret/delete", confirm=typed)
    assert response.headers["Location"] == "/channels/secret#settings"
    assert "Type the channel&#39;s name, secret, to delete it" in text(
        alice.get("/channels/secret"))  # fmt: skip
    assert channel() is not None


def test_the_owner_deletes_the_channel_with_its_files(client, repo, alice):
    upload(client, repo, twine_form())
    page = text(alice.get("/channels/secret"))
    assert "its 1 packages with their 1 files" in page
    response = alice.post("/channels/secret/delete", confirm="secret")
    assert response.status_code == 303 and response.headers["Location"] == "/channels"
    assert "Deleted channel &#39;secret&#39; and its 1 files" in text(alice.get("/channels"))
    assert channel() is None
    assert get_db().execute("SELECT count(*) FROM files").fetchone()[0] == 0
    assert alice.get("/channels/secret").status_code == 404
