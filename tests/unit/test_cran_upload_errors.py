"""R package uploads that must be refused: each gets a clear 4xx naming what was wrong and
leaves no row, blob or temp file behind; and the ones that must be accepted."""

from __future__ import annotations

import gzip
import io
import random
import zipfile

import pytest

from repo import accounts, files
from repo.db import get_db

from .builders import (
    R_DESCRIPTION,
    R_SOURCE_NAME,
    r_form,
    r_source,
    refusal,
    send,
    stored,
    tar_gz,
    token_auth,
)

URL = "/api/repo/ch"
BINARY = R_DESCRIPTION + b"Built: R 4.2.2; ; 2026-11-26 10:00:00 UTC; unix\n"
NO_R_VERSION = R_DESCRIPTION + b"Built: R; ; 2026-11-26 10:00:00 UTC; unix\n"


def windows_zip(description: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("abc/DESCRIPTION", description)
    return buffer.getvalue()


def bad(status: int, message: str, id: str, **form) -> pytest.param:
    return pytest.param(form, status, message, id=id)


BAD_UPLOADS = [
    bad(400, "Missing form field ':action' (Python) or 'filetype' (R)", "no-filetype",
        filetype=None),
    bad(400, "Unknown filetype 'cran_package': use cran_source_package or cran_binary_package",
        "unknown-filetype", filetype="cran_package"),
    bad(400, "Unknown filetype '': use cran_source_package or cran_binary_package",
        "empty-filetype", filetype=""),
    bad(400, "Missing form field 'content': the package file (-F content=@FILE)", "no-content",
        content=None),
    bad(400, "Missing form field 'content': the package file (-F content=@FILE)",
        "content-as-text", content="abc_2.1.tar.gz"),
    bad(400, "Invalid R package: not a tar or zip archive", "not-an-archive",
        content=(io.BytesIO(b"hello, I am not a package" * 10), R_SOURCE_NAME)),
    bad(400, "Invalid R package: this is a binary package (it has a Built field); upload it as"
        " cran_binary_package", "binary-as-source",
        content=(io.BytesIO(r_source(BINARY)), R_SOURCE_NAME)),
    bad(400, "Invalid R package: not a binary package (no Built field); upload it as"
        " cran_source_package", "source-as-binary", filetype="cran_binary_package"),
    bad(400, "File name 'abd_2.1.tar.gz' does not match DESCRIPTION Package 'abc' Version"
        " '2.1' (expected abc_2.1.tar.gz or similar)", "other-package-name",
        content=(io.BytesIO(r_source()), "abd_2.1.tar.gz")),
    bad(400, "File name 'abc_2.0.tar.gz' does not match DESCRIPTION Package 'abc' Version"
        " '2.1' (expected abc_2.1.tar.gz or similar)", "other-version",
        content=(io.BytesIO(r_source()), "abc_2.0.tar.gz")),
    bad(400, "File name '../abc_2.1.tar.gz' does not match DESCRIPTION Package 'abc' Version"
        " '2.1' (expected abc_2.1.tar.gz or similar)", "path-in-file-name",
        content=(io.BytesIO(r_source()), "../abc_2.1.tar.gz")),
    bad(400, "Invalid DESCRIPTION: Version: missing", "no-version",
        content=(io.BytesIO(r_source(b"Package: abc\nLicense: MIT\n")), R_SOURCE_NAME)),
    bad(400, "Invalid R package: top directory 'abd' is not the package name 'abc'",
        "top-dir-is-not-the-package", content=(io.BytesIO(r_source(root="abd")), R_SOURCE_NAME)),
    bad(400, "Built field has no platform: add the form field platform (e.g. big-sur-arm64 or"
        " noble-x86_64)", "pure-r-binary-without-platform", filetype="cran_binary_package",
        content=(io.BytesIO(r_source(BINARY)), "abc_2.1.tgz")),
    # Both name a directory under cran/: a write token must not store contrib/999...9.1.
    bad(400, f"Invalid rversion '{'9' * 97}...': expected e.g. 4.4 or 4.4.1", "huge-rversion",
        filetype="cran_binary_package", platform="big-sur-arm64", rversion="9" * 300 + ".1",
        content=(io.BytesIO(r_source(NO_R_VERSION)), "abc_2.1.tgz")),
    bad(400, f"Unknown platform 'noble-{'x' * 35}': expected macosx, big-sur-x86_64,"
        " big-sur-arm64, sonoma-arm64 or a Linux build like noble-x86_64 (at most 40"
        " characters)", "long-platform", filetype="cran_binary_package",
        platform="noble-" + "x" * 35, content=(io.BytesIO(r_source(BINARY)), "abc_2.1.tar.gz")),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "status", "message"), BAD_UPLOADS)
def test_bad_r_upload_is_refused_and_leaves_nothing_behind(
    app, client, owner, changes, status, message
):
    before = stored(app)

    response = send(client, "POST", URL, data=r_form(**changes), headers=owner)

    assert response.status_code == status, response.status
    assert refusal(response) == message
    assert stored(app) == before
    assert before["tmp"] == []


def test_source_package_is_stored_under_src_contrib(app, client, owner):
    response = send(client, "POST", URL, data=r_form(), headers=owner)

    assert response.status_code == 200, response.status
    row = get_db().execute("SELECT subdir, filename, version FROM files").fetchone()
    assert tuple(row) == ("src/contrib", R_SOURCE_NAME, "2.1")
    index = send(client, "GET", f"{URL}/cran/src/contrib/PACKAGES", headers=owner)
    assert b"Package: abc\nVersion: 2.1\nDepends: R (>= 3.5.0)\nLicense: MIT\nMD5sum: " in (
        index.get_data()
    )
    assert stored(app)["tmp"] == []


def test_identical_reupload_is_ok_and_other_content_is_a_conflict(app, client, owner):
    assert send(client, "POST", URL, data=r_form(), headers=owner).status_code == 200
    before = stored(app)

    again = send(client, "POST", URL, data=r_form(), headers=owner)
    other = send(client, "POST", URL, headers=owner, data=r_form(
        tar_gz({"abc/DESCRIPTION": R_DESCRIPTION, "abc/R/abc.R": b"f <- 2\n"})))  # fmt: skip

    assert again.status_code == 200
    assert again.get_data(as_text=True) == "File already exists (identical content)\n"
    assert other.status_code == 409
    assert refusal(other).startswith("File already exists ('abc_2.1.tar.gz', sha256 ")
    assert stored(app) == before


def test_an_identical_upload_landing_after_the_first_look_is_still_ok(app, client, owner,
                                                                      monkeypatch):  # fmt: skip
    # Two identical uploads at once: the second looks for its name before the first has
    # committed (so `existing` sees nothing) and checks the version after it has.
    assert send(client, "POST", URL, data=r_form(), headers=owner).status_code == 200
    before = stored(app)
    real, looks = files.existing, []

    def existing(*args):  # the first look misses; publish's own look after the race is real
        looks.append(args)
        return False if len(looks) == 1 else real(*args)

    monkeypatch.setattr(files, "existing", existing)

    again = send(client, "POST", URL, data=r_form(), headers=owner)

    assert again.status_code == 200, again.status
    assert len(looks) == 2 and stored(app) == before


def test_same_version_in_another_compression_is_a_conflict(app, client, owner):
    assert send(client, "POST", URL, data=r_form(), headers=owner).status_code == 200
    before = stored(app)
    plain_tar = tar_gz({"abc/DESCRIPTION": R_DESCRIPTION})
    response = send(client, "POST", URL, headers=owner,
                    data=r_form(gzip.decompress(plain_tar), "abc_2.1.tar"))  # fmt: skip

    assert response.status_code == 409
    assert refusal(response) == (
        "File already exists: abc 2.1 is in src/contrib as 'abc_2.1.tar.gz'"
    )
    assert stored(app) == before


def test_windows_binary_goes_to_its_r_version(app, client, owner):
    built = (
        R_DESCRIPTION + b"Built: R 4.4.1; x86_64-w64-mingw32; 2026-11-26 10:00:00 UTC; windows\n"
    )

    response = send(client, "POST", URL, headers=owner,
                    data=r_form(windows_zip(built), "abc_2.1.zip",
                                filetype="cran_binary_package"))  # fmt: skip

    assert response.status_code == 200, response.status
    row = get_db().execute("SELECT subdir, filename FROM files").fetchone()
    assert tuple(row) == ("bin/windows/contrib/4.4", "abc_2.1.zip")
    index = send(client, "GET", f"{URL}/cran/bin/windows/contrib/4.4/PACKAGES", headers=owner)
    assert b"Package: abc\n" in index.get_data() and b"Built: R 4.4.1;" in index.get_data()


def test_r_upload_needs_write_rights(app, client, repo):
    made = repo.owner_with_channel("alice", "ch")
    token_id, secret = accounts.create_token(get_db(), made.user_id, made.channel_id, "read")

    response = send(client, "POST", URL, data=r_form(), headers=token_auth(secret))

    assert response.status_code == 403
    assert refusal(response) == f"Token {token_id} may not upload to channel 'ch'"
    assert stored(app) == {"files": 0, "packages": 0, "blobs": [], "tmp": []}


def test_r_upload_without_credentials_is_401(app, client, repo):
    repo.owner_with_channel("alice", "ch")

    response = send(client, "POST", URL, data=r_form())

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="repo"'
    assert stored(app) == {"files": 0, "packages": 0, "blobs": [], "tmp": []}


def test_r_upload_over_the_limit_is_too_large(small):
    app, auth = small
    noise = random.Random(1).randbytes(1_100_000)
    package = tar_gz({"abc/DESCRIPTION": R_DESCRIPTION, "abc/inst/noise": noise})

    response = send(app.test_client(), "POST", URL, data=r_form(package), headers=auth)

    assert response.status_code == 413
    assert refusal(response) == "File too large: limit is 1 MB"
    assert stored(app) == {"files": 0, "packages": 0, "blobs": [], "tmp": []}
