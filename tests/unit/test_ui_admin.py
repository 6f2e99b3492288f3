"""The admin pages: only admins see them; users are created, disabled, enabled and given new
passwords there; every channel is listed, private ones too."""

from __future__ import annotations

import pytest

from repo import accounts
from repo.db import get_db

from .webui import Visitor, text

pytestmark = pytest.mark.usefixtures("fast_passwords")

PAGES = ["/admin", "/admin/users", "/admin/channels"]
FORMS = ["/admin/users", "/admin/users/bob/disabled", "/admin/users/bob/password"]


@pytest.fixture
def people(repo):
    """root is an admin; bob owns the private channel 'bobs'."""
    repo.user("root", admin=True)
    repo.owner_with_channel("bob", "bobs")


@pytest.fixture
def root(people, visitor) -> Visitor:
    visitor.login("root")
    return visitor


@pytest.mark.parametrize("url", PAGES)
def test_admin_pages_are_403_for_other_users(people, visitor, url):
    visitor.login("bob")
    assert visitor.get(url).status_code == 403


@pytest.mark.parametrize("url", FORMS)
def test_admin_forms_are_403_for_other_users(people, visitor, url):
    visitor.login("bob")
    response = visitor.post(url, name="eve", password="eve-password", disabled="1")
    assert response.status_code == 403
    assert "Only administrators" in text(response)
    assert accounts.check_password(get_db(), "bob", "bob-password") is not None


@pytest.mark.parametrize("url", PAGES)
def test_admin_pages_send_anonymous_visitors_to_sign_in(people, visitor, url):
    response = visitor.get(url)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_admin_creates_a_user_who_can_sign_in(root, client):
    response = root.post("/admin/users", name="carol", password="carol-password", admin="on")
    assert response.headers["Location"] == "/admin/users"
    assert "Created admin &#39;carol&#39;" in text(root.get("/admin/users"))
    assert accounts.check_password(get_db(), "carol", "carol-password").is_admin


def test_refused_user_is_explained(root):
    root.post("/admin/users", name="dave", password="short")
    assert "Password too short" in text(root.get("/admin/users"))
    root.post("/admin/users", name="bob", password="long-enough")
    assert "User &#39;bob&#39; already exists" in text(root.get("/admin/users"))


def test_disable_and_enable_a_user(root):
    root.post("/admin/users/bob/disabled", disabled="1")
    assert accounts.check_password(get_db(), "bob", "bob-password") is None
    assert "Enable bob" in text(root.get("/admin/users"))
    root.post("/admin/users/bob/disabled", disabled="0")
    assert accounts.check_password(get_db(), "bob", "bob-password") is not None


def test_admin_cannot_disable_themselves(root):
    root.post("/admin/users/root/disabled", disabled="1")
    assert "You cannot disable yourself" in text(root.get("/admin/users"))
    assert accounts.check_password(get_db(), "root", "root-password") is not None


def test_reset_password(root):
    root.post("/admin/users/bob/password", password="bobs-new-password")
    assert accounts.check_password(get_db(), "bob", "bobs-new-password") is not None
    root.post("/admin/users/root/password", password="roots-new-password")
    assert root.get("/admin/users").status_code == 200, "your own session goes on"


def test_all_channels_lists_private_channels_of_others(root):
    page = text(root.get("/admin/channels"))
    assert 'href="/channels/bobs"' in page and "private" in page
