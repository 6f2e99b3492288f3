"""PyPI's rule: a filename once used in a channel never holds other bytes, even after the
file is deleted; the same bytes uploaded again restore the file."""

from __future__ import annotations

import pytest

from repo import files
from repo.db import get_db

from .builders import (
    R_DESCRIPTION,
    R_SOURCE_NAME,
    WHEEL_NAME,
    r_form,
    r_source,
    refusal,
    send,
    stored,
    token_auth,
    twine_form,
    wheel,
)

URL = "/api/repo/ch"
REUSED = "This filename has already been used ('{}' was deleted): use a different version"
SIDES = {
    "python": (WHEEL_NAME, lambda: twine_form(), lambda: twine_form(wheel(code=b"# other\n"))),
    "r": (R_SOURCE_NAME, lambda: r_form(),
          lambda: r_form(r_source(R_DESCRIPTION + b"Note: other bytes\n"))),
}  # fmt: skip


def delete(app, filename: str) -> None:
    """What the web UI's delete button does."""
    db = get_db()
    file_id, channel_id = db.execute(
        "SELECT id, channel_id FROM files WHERE filename = ?", (filename,)
    ).fetchone()
    files.delete_file(db, channel_id, file_id)


@pytest.mark.parametrize("side", SIDES)
def test_a_deleted_filename_cannot_hold_other_bytes(app, client, owner, side):
    filename, first, other = SIDES[side]
    assert send(client, "POST", URL, data=first(), headers=owner).status_code == 200
    delete(app, filename)
    before = stored(app)

    response = send(client, "POST", URL, data=other(), headers=owner)

    assert response.status_code == 400
    assert refusal(response) == REUSED.format(filename)
    assert stored(app) == before


@pytest.mark.parametrize("side", SIDES)
def test_the_same_bytes_again_restore_a_deleted_file(app, client, owner, side):
    filename, first, _ = SIDES[side]
    assert send(client, "POST", URL, data=first(), headers=owner).status_code == 200
    delete(app, filename)
    assert stored(app)["files"] == 0

    response = send(client, "POST", URL, data=first(), headers=owner)

    assert response.status_code == 200, response.status
    assert response.get_data(as_text=True).startswith(f"Uploaded {filename} to channel 'ch'")
    assert stored(app)["files"] == 1


def test_the_rule_holds_per_channel(app, client, owner, repo):
    assert send(client, "POST", URL, data=twine_form(), headers=owner).status_code == 200
    delete(app, WHEEL_NAME)
    made = repo.owner_with_channel("bob", "other")
    other_owner = token_auth(repo.token(made.user_id, made.channel_id, "write"))

    response = send(client, "POST", "/api/repo/other", data=twine_form(wheel(code=b"# x\n")),
                    headers=other_owner)  # fmt: skip

    assert response.status_code == 200, response.status
