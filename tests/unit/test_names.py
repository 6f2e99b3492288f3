"""Names that look like others: a trailing newline is refused everywhere a name is made or
looked up (security review findings 7 and 8)."""

from __future__ import annotations

import logging

import pytest

from repo import accounts
from repo.errors import Invalid

from .builders import refusal, send, token_auth


@pytest.mark.parametrize("name", ["dev\n", "dev\r\n", "\ndev", "de\nv"])
def test_a_channel_name_with_a_line_break_is_refused(repo, name):
    owner = repo.user("alice")

    with pytest.raises(Invalid, match="Invalid channel name"):
        accounts.create_channel(repo.db, name, owner)


@pytest.mark.parametrize("name", ["alice\n", "alice\r\n"])
def test_a_user_name_with_a_line_break_is_refused(repo, name):
    with pytest.raises(Invalid, match="Invalid user name"):
        accounts.create_user(repo.db, name, "long-enough-password")


@pytest.mark.parametrize(
    "project",
    [
        "x%0d%0a%5b2026-12-01%2000:00:00%5d%20FORGED%20LINE",
        "x%0a",
        "Demo%0D%0APkg",
        "-leading-dash",
    ],
)
def test_a_project_url_that_is_no_project_name_is_404_and_logs_no_exception(
    app, client, repo, caplog, project
):
    made = repo.owner_with_channel("alice", "pub", public=True)
    auth = token_auth(repo.token(made.user_id))

    with caplog.at_level(logging.INFO):
        response = send(client, "GET", f"/api/repo/pub/simple/{project}/", headers=auth)

    assert response.status_code == 404
    assert refusal(response).startswith("Project '")
    assert "Exception on" not in caplog.text
    assert "\n[2026-12-01" not in caplog.text
