"""What a channel's owners do in the UI: yank, unyank and delete files, and manage members;
and that nobody else can."""

from __future__ import annotations

import pytest

from repo import accounts, files
from repo.db import get_db
from repo.errors import NotFound

from .builders import WHEEL_NAME, send, token_auth, twine_form, wheel
from .webui import text

pytestmark = pytest.mark.usefixtures("fast_passwords")


@pytest.fixture
def shop(app, client, repo):
    """alice owns 'ch' with demo-pkg 1.0 (wheel) in it; wendy may write and rita read there."""
    made = repo.owner_with_channel("alice", "ch")
    for name, role in (("wendy", "write"), ("rita", "read")):
        accounts.grant(get_db(), made.channel_id, repo.user(name), role)
    repo.user("mallory")
    auth = token_auth(repo.token(made.user_id, made.channel_id, "write"))
    assert send(client, "POST", "/api/repo/ch/", headers=auth, data=twine_form()).status_code == 200
    return made


def the_file(channel_id: int):
    return files.find(get_db(), channel_id, "pypi", "", WHEEL_NAME)


def revision(channel_id: int) -> int:
    return (
        get_db().execute("SELECT revision FROM channels WHERE id = ?", (channel_id,)).fetchone()[0]
    )


def test_owner_yanks_with_a_reason_and_unyanks(shop, visitor):
    visitor.login("alice")
    file_id, before = the_file(shop.channel_id)["id"], revision(shop.channel_id)
    response = visitor.post(f"/channels/ch/files/{file_id}/yanked", yanked="1", reason="broken")
    assert response.headers["Location"] == "/channels/ch/pypi/demo-pkg"
    assert (the_file(shop.channel_id)["yanked"], the_file(shop.channel_id)["yanked_reason"]) == (
        1, "broken")  # fmt: skip
    assert revision(shop.channel_id) == before + 1
    assert "yanked" in text(visitor.get("/channels/ch/pypi/demo-pkg"))
    visitor.post(f"/channels/ch/files/{file_id}/yanked", yanked="0")
    assert the_file(shop.channel_id)["yanked"] == 0


def test_owner_deletes_the_last_file_and_the_package_goes_too(app, shop, visitor):
    visitor.login("alice")
    row = the_file(shop.channel_id)
    store = app.extensions["blobs"]
    response = visitor.post(f"/channels/ch/files/{row['id']}/delete")
    assert response.headers["Location"] == "/channels/ch"
    assert the_file(shop.channel_id) is None
    assert files.package_detail(get_db(), shop.channel_id, "pypi", "demo-pkg") is None
    assert store.exists(row["sha256"]), "the blob waits for `repo gc`"
    assert visitor.get("/channels/ch/pypi/demo-pkg").status_code == 404


def test_delete_file_keeps_the_package_while_it_has_files(app, shop, client, repo):
    auth = token_auth(repo.token(shop.user_id, shop.channel_id, "write"))
    other = twine_form(wheel(), filename="demo_pkg-1.0-py2.py3-none-any.whl")
    assert send(client, "POST", "/api/repo/ch/", headers=auth, data=other).status_code == 200
    before = revision(shop.channel_id)
    assert files.delete_file(get_db(), shop.channel_id, the_file(shop.channel_id)["id"]) == 1
    assert revision(shop.channel_id) == before + 1
    assert the_file(shop.channel_id) is None
    assert len(files.package_detail(get_db(), shop.channel_id, "pypi", "demo-pkg")[1]) == 1


def test_delete_file_of_another_channel_is_not_found(shop, repo):
    other = repo.channel("other", shop.user_id)
    with pytest.raises(NotFound):
        files.delete_file(get_db(), other, the_file(shop.channel_id)["id"])
    assert the_file(shop.channel_id) is not None


@pytest.mark.parametrize(("who", "status"), [("wendy", 403), ("rita", 403), ("mallory", 404)])
@pytest.mark.parametrize("action", ["yanked", "delete"])
def test_only_owners_change_files(shop, visitor, who, status, action):
    visitor.login(who)
    file_id = the_file(shop.channel_id)["id"]
    response = visitor.post(f"/channels/ch/files/{file_id}/{action}", yanked="1")
    assert response.status_code == status
    assert the_file(shop.channel_id)["yanked"] == 0


def test_anonymous_visitor_is_sent_to_sign_in(shop, visitor):
    response = visitor.post(f"/channels/ch/files/{the_file(shop.channel_id)['id']}/delete")
    assert response.status_code == 302
    assert the_file(shop.channel_id) is not None


def roles(channel_id: int) -> dict[str, str]:
    return {m["name"]: m["role"] for m in accounts.list_members(get_db(), channel_id)}


def test_owner_adds_changes_and_removes_members(shop, visitor):
    visitor.login("alice")
    response = visitor.post("/channels/ch/members", user="mallory", role="read")
    assert response.headers["Location"] == "/channels/ch#members"
    assert roles(shop.channel_id)["mallory"] == "read"
    visitor.post("/channels/ch/members", user="mallory", role="owner")
    assert roles(shop.channel_id)["mallory"] == "owner"
    visitor.post("/channels/ch/members/mallory/remove")
    assert "mallory" not in roles(shop.channel_id)
    assert "Removed &#39;mallory&#39;" in text(visitor.get("/channels/ch"))


@pytest.mark.parametrize(
    ("url", "form"),
    [("/channels/ch/members", {"user": "alice", "role": "write"}),
     ("/channels/ch/members/alice/remove", {})],
)  # fmt: skip
def test_the_last_owner_stays(shop, visitor, url, form):
    visitor.login("alice")
    visitor.post(url, **form)
    assert roles(shop.channel_id)["alice"] == "owner"
    assert "A channel needs an owner" in text(visitor.get("/channels/ch"))


def test_unknown_user_is_explained(shop, visitor):
    visitor.login("alice")
    visitor.post("/channels/ch/members", user="nobody", role="read")
    assert "User &#39;nobody&#39; not found" in text(visitor.get("/channels/ch"))


@pytest.mark.parametrize(("who", "status"), [("wendy", 403), ("mallory", 404)])
def test_only_owners_manage_members(shop, visitor, who, status):
    visitor.login(who)
    assert visitor.post("/channels/ch/members", user=who, role="owner").status_code == status
    assert visitor.post("/channels/ch/members/alice/remove").status_code == status
    assert roles(shop.channel_id) == {"alice": "owner", "wendy": "write", "rita": "read"}
    assert "Add a member" not in text(visitor.get("/channels/ch"))
