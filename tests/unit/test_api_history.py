"""A channel's history over the JSON API: its uploads, yanks, unyanks and deletes oldest
first, with the file as it was and who made each; ?limit= the newest; the readers of the
channel, anonymous ones of a public channel too, and nobody else."""

from __future__ import annotations

import pytest

from repo import files
from repo.db import get_db

from .apicalls import problem
from .builders import R_SOURCE_NAME, WHEEL_NAME, r_form, twine_form

JSON = {"Accept": "application/json"}
HISTORY = "/api/channels/ch/history"


@pytest.fixture
def world(repo):
    """alice owns the private channel 'ch' and bob reads it; carol is a stranger to it."""
    made = repo.owner_with_channel("alice", "ch")
    bob, carol = repo.user("bob"), repo.user("carol")
    repo.db.execute("INSERT INTO memberships VALUES (?, ?, 'read')", (made.channel_id, bob))
    return {"owner": repo.token(made.user_id), "bob": repo.token(bob),
            "carol": repo.token(carol), "channel_id": made.channel_id}  # fmt: skip


@pytest.fixture
def timeline(api, world) -> dict[str, dict]:
    """alice uploads a wheel and an R source package and yanks the wheel over the API; the
    console yanks and unyanks the R package; alice deletes the yanked wheel. The two uploads'
    JSON answers, by family."""
    uploaded = {
        family: api("POST", "/api/repo/ch", 201, token=world["owner"], headers=JSON,
                    data=form).get_json()
        for family, form in (("python", twine_form()), ("cran", r_form()))
    }  # fmt: skip
    wheel = f"/api/channels/ch/files/{WHEEL_NAME}"
    api("PATCH", wheel, 200, token=world["owner"], json={"yanked": True, "yanked_reason": "broken"})
    for yanked in (True, False):
        files.set_yanked(get_db(), world["channel_id"], R_SOURCE_NAME, yanked, None)
    api("DELETE", wheel, 204, token=world["owner"])
    return uploaded


def events_of(body: dict) -> list[tuple]:
    return [(e["event"], e["filename"], e["actor"], e["yanked_reason"]) for e in body["items"]]


# What an event and the upload's answer both tell of the file.
FILE_FIELDS = ("family", "kind", "version", "filename", "subdir", "sha256", "size")
EVERY_EVENT = [
    ("upload", WHEEL_NAME, "alice", None),
    ("upload", R_SOURCE_NAME, "alice", None),
    ("yank", WHEEL_NAME, "alice", "broken"),
    ("yank", R_SOURCE_NAME, None, None),
    ("unyank", R_SOURCE_NAME, None, None),
    # The file was yanked when deleted: that reason is the yank's, not the delete's.
    ("delete", WHEEL_NAME, "alice", None),
]


def test_the_history_lists_every_change_oldest_first_with_who_made_it(api, world, timeline):
    body = api("GET", HISTORY, 200, token=world["bob"]).get_json()

    assert events_of(body) == EVERY_EVENT and body["total_count"] == 6
    times = [event["at"] for event in body["items"]]
    assert times == sorted(times) and all(at.endswith("Z") for at in times)


def test_each_event_has_the_file_as_it_was(api, world, timeline):
    items = api("GET", HISTORY, 200, token=world["bob"]).get_json()["items"]

    wheel, r_source, deleted = items[0], items[1], items[-1]
    for event, upload in ((wheel, timeline["python"]), (r_source, timeline["cran"]),
                          (deleted, timeline["python"])):  # fmt: skip
        assert [event[key] for key in FILE_FIELDS] == [upload[key] for key in FILE_FIELDS]
    assert (wheel["package"], wheel["kind"], wheel["subdir"]) == ("Demo.Pkg", "bdist_wheel", "")
    assert (r_source["package"], r_source["kind"], r_source["subdir"]) == (
        "abc", "source", "src/contrib",
    )  # fmt: skip


def test_limit_answers_the_newest_events_still_oldest_first(api, world, timeline):
    newest = api("GET", f"{HISTORY}?limit=2", 200, token=world["bob"]).get_json()
    before = api("GET", f"{HISTORY}?limit=2&offset=2", 200, token=world["bob"]).get_json()
    past_the_start = api("GET", f"{HISTORY}?offset=6", 200, token=world["bob"]).get_json()

    assert events_of(newest) == EVERY_EVENT[4:] and newest["total_count"] == 6
    assert events_of(before) == EVERY_EVENT[2:4]
    assert past_the_start == {"total_count": 6, "items": []}


def test_a_public_channels_history_is_read_anonymously(api, repo):
    made = repo.owner_with_channel("dora", "pub", public=True)
    api("POST", "/api/repo/pub", 201, token=repo.token(made.user_id), headers=JSON,
        data=twine_form())  # fmt: skip

    body = api("GET", "/api/channels/pub/history", 200).get_json()

    assert events_of(body) == [("upload", WHEEL_NAME, "dora", None)]


def test_a_private_channels_history_is_401_to_nobody_and_404_to_strangers(api, world, timeline):
    assert problem(api("GET", HISTORY, 401)) == ("auth_required", "Credentials required")
    assert problem(api("GET", HISTORY, 404, token=world["carol"])) == (
        "not_found", "Channel 'ch' not found",
    )  # fmt: skip
    api("GET", "/api/channels/nope/history", 404, token=world["bob"])


def test_an_empty_history_is_an_empty_list(api, world):
    assert api("GET", HISTORY, 200, token=world["bob"]).get_json() == {
        "total_count": 0, "items": []
    }  # fmt: skip


@pytest.mark.parametrize(
    "query, message",
    [
        ("limit=0", "Invalid query parameter limit='0': use a whole number 1 to 1000"),
        ("limit=1001", "Invalid query parameter limit='1001': use a whole number 1 to 1000"),
        ("limit=ten", "Invalid query parameter limit='ten': use a whole number 1 to 1000"),
        ("offset=-1", "Invalid query parameter offset='-1': use a whole number 0 or more"),
    ],
)
def test_a_bad_limit_or_offset_is_400_naming_it(api, world, query, message):
    response = api("GET", f"{HISTORY}?{query}", 400, token=world["bob"])

    assert problem(response) == ("validation_error", message)
