"""Packages and files over the JSON API, and the upload's JSON answer: 201 new, 200 the same
file again, problem+json refusals; without `Accept: application/json` nothing changes."""

from __future__ import annotations

import hashlib

import pytest

from .apicalls import problem
from .builders import (
    R_SOURCE_NAME,
    WHEEL_NAME,
    demo_wheel,
    r_binary,
    r_form,
    refusal,
    send,
    token_auth,
    twine_form,
    wheel,
)

JSON = {"Accept": "application/json"}
MAC = "R {}.1; aarch64-apple-darwin20; 2026-11-26 10:00:00 UTC; unix"


@pytest.fixture
def world(repo):
    """alice owns the private channel 'ch'; bob may read it."""
    made = repo.owner_with_channel("alice", "ch")
    bob = repo.user("bob")
    repo.db.execute("INSERT INTO memberships VALUES (?, ?, 'read')", (made.channel_id, bob))
    return {"owner": repo.token(made.user_id), "write": repo.token(made.user_id, made.channel_id,
            "write"), "bob": repo.token(bob)}  # fmt: skip


def upload(api, world, form, status, who="write"):
    return api("POST", "/api/repo/ch", status, token=world[who], headers=JSON, data=form)


def test_a_json_upload_is_201_then_200_with_the_files_json(api, world):
    first = upload(api, world, twine_form(), 201).get_json()
    again = upload(api, world, twine_form(), 200).get_json()

    assert first == again
    assert first["filename"] == WHEEL_NAME
    assert (first["family"], first["kind"], first["name"], first["version"]) == (
        "python", "bdist_wheel", "Demo.Pkg", "1.0",
    )  # fmt: skip
    assert first["sha256"] == hashlib.sha256(wheel()).hexdigest()
    assert (first["yanked"], first["subdir"]) == (False, "")


def test_an_r_upload_answers_its_tree(api, world):
    body = upload(api, world, r_form(), 201).get_json()

    assert (body["family"], body["kind"], body["subdir"]) == ("cran", "source", "src/contrib")
    assert body["filename"] == R_SOURCE_NAME


def test_a_json_upload_refusal_is_a_problem(api, world):
    upload(api, world, twine_form(), 201)

    other = upload(api, world, twine_form(wheel(code=b"x = 1\n")), 409)
    assert problem(other)[0] == "file_exists"
    assert problem(upload(api, world, twine_form(), 403, who="bob"))[0] == "forbidden"
    unauthenticated = api("POST", "/api/repo/ch", 401, headers=JSON, data=twine_form())
    assert problem(unauthenticated)[0] == "auth_required"
    api("POST", "/api/repo/nope", 404, token=world["write"], headers=JSON, data=twine_form())
    bad = upload(api, world, {":action": "file_upload"}, 400)
    assert problem(bad) == ("validation_error", "Upload payload does not have a file")


def test_without_accept_json_the_upload_answers_twine_as_before(api, world):
    headers = {**token_auth(world["write"]), "Accept": "*/*"}
    first = send(api.client, "POST", "/api/repo/ch/", headers=headers, data=twine_form())
    again = send(api.client, "POST", "/api/repo/ch/", headers=headers, data=twine_form())
    other = send(api.client, "POST", "/api/repo/ch/", headers=headers,
                 data=twine_form(wheel(code=b"x = 1\n")))  # fmt: skip

    assert first.status == f"200 Uploaded {WHEEL_NAME} to channel 'ch'"
    assert again.status == "200 File already exists (identical content)"
    assert other.status_code == 409 and refusal(other).startswith("File already exists")


def test_packages_are_listed_searched_and_filtered(api, world):
    upload(api, world, twine_form(), 201)
    upload(api, world, twine_form(*demo_wheel("2.0"), version="2.0"), 201)
    upload(api, world, r_form(), 201)

    listed = api("GET", "/api/channels/ch/packages", 200, token=world["bob"]).get_json()

    assert listed["items"] == [
        {"family": "python", "name": "demo-pkg", "display_name": "Demo.Pkg",
         "versions": ["1.0", "2.0"], "file_count": 2},
        {"family": "cran", "name": "abc", "display_name": "abc", "versions": ["2.1"],
         "file_count": 1},
    ]  # fmt: skip
    cran = api("GET", "/api/channels/ch/packages?family=cran", 200, token=world["bob"])
    assert [p["name"] for p in cran.get_json()["items"]] == ["abc"]
    found = api("GET", "/api/channels/ch/packages?q=Demo.P", 200, token=world["bob"])
    assert [p["name"] for p in found.get_json()["items"]] == ["demo-pkg"]
    api("GET", "/api/channels/ch/packages?family=conda", 400, token=world["bob"])
    api("GET", "/api/channels/ch/packages", 401)


def test_a_package_shows_its_files_newest_first(api, world):
    upload(api, world, twine_form(), 201)
    upload(api, world, twine_form(*demo_wheel("2.0"), version="2.0"), 201)

    body = api("GET", "/api/channels/ch/packages/python/Demo.Pkg", 200, token=world["bob"])

    assert [file["version"] for file in body.get_json()["files"]] == ["2.0", "1.0"]
    api("GET", "/api/channels/ch/packages/cran/Demo.Pkg", 404, token=world["bob"])


def test_the_owner_yanks_and_unyanks_a_file(api, world):
    upload(api, world, twine_form(), 201)
    url = f"/api/channels/ch/files/{WHEEL_NAME}"

    yanked = api("PATCH", url, 200, token=world["owner"],
                 json={"yanked": True, "yanked_reason": "broken"}).get_json()  # fmt: skip
    assert (yanked["yanked"], yanked["yanked_reason"]) == (True, "broken")
    back = api("PATCH", url, 200, token=world["owner"], json={"yanked": False}).get_json()
    assert (back["yanked"], back["yanked_reason"]) == (False, None)
    api("PATCH", url, 400, token=world["owner"], json={"yanked": False, "yanked_reason": "x"})
    api("PATCH", url, 403, token=world["write"], json={"yanked": True})
    api("PATCH", "/api/channels/ch/files/nope.whl", 404, token=world["owner"],
        json={"yanked": True})  # fmt: skip


def test_an_r_file_in_several_trees_needs_a_subdir(api, world):
    for rversion in ("4.3", "4.4"):
        form = r_form(r_binary(MAC.format(rversion)), "abc_2.1.tgz", filetype="cran_binary_package",
                      rversion=rversion)  # fmt: skip
        upload(api, world, form, 201)
    url = "/api/channels/ch/files/abc_2.1.tgz"

    ambiguous = api("DELETE", url, 400, token=world["owner"])

    assert "is in several trees" in problem(ambiguous)[1] and "?subdir=" in problem(ambiguous)[1]
    subdir = "bin/macosx/big-sur-arm64/contrib/4.3"
    api("DELETE", f"{url}?subdir={subdir}", 204, token=world["owner"])
    api("DELETE", url, 204, token=world["owner"])
    api("DELETE", url, 404, token=world["owner"])
    assert api("GET", "/api/channels/ch/packages", 200, token=world["owner"]).get_json() == {
        "total_count": 0, "items": []
    }  # fmt: skip
