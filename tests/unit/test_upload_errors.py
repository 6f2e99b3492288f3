"""The upload endpoint against every bad input of python.md section 1.3: the status, the
message (reason phrase and body), and that nothing was left behind."""

from __future__ import annotations

import hashlib
import io
import random

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from repo import accounts, files
from repo.db import get_db

from .builders import (
    META,
    SDIST_NAME,
    WHEEL_NAME,
    refusal,
    sdist,
    send,
    stored,
    token_auth,
    twine_form,
    wheel,
)

URL = "/api/repo/ch/"
OTHER = wheel(code=b"# other content\n")
DIGEST_MISMATCH = "The digest supplied does not match a digest calculated from the uploaded file"


def hexdigests(data: bytes) -> dict[str, str]:
    return {
        "sha256_digest": hashlib.sha256(data).hexdigest(),
        "blake2_256_digest": hashlib.blake2b(data, digest_size=32).hexdigest(),
        "md5_digest": hashlib.md5(data).hexdigest(),
    }


def upload(client, url: str, **options):
    return send(client, "POST", url, **options)


def bad(status: int, message: str, id: str, **form) -> pytest.param:
    """A case: the twine form with `form` changed (None leaves a field out), and the answer."""
    return pytest.param(form, status, message, id=id)


LONG_NAME = "d" * 249 + "-1.0.whl"

BAD_UPLOADS = [
    bad(400, "Missing form field ':action' (Python) or 'filetype' (R)",
        "no-action", **{":action": None, "filetype": None}),
    bad(400, "Unsupported :action ''", "empty-action", **{":action": ""}),
    bad(400, "Unsupported :action 'remove_pkg'", "unknown-action", **{":action": "remove_pkg"}),
    bad(410, "Unsupported :action 'submit': upload distribution files instead",
        "submit-is-gone", **{":action": "submit"}),
    bad(410, "Unsupported :action 'doc_upload': upload distribution files instead",
        "doc-upload-is-gone", **{":action": "doc_upload"}),
    bad(400, "Unknown protocol version", "protocol-version-2", protocol_version="2"),
    bad(400, "Unknown protocol version", "protocol-version-empty", protocol_version=""),
    bad(400, "Upload payload does not have a file", "no-content-part", content=None),
    bad(400, "Upload payload does not have a file", "content-as-text-field", content="x"),
    bad(400, "Invalid filename '': empty", "empty-filename", filename=""),
    bad(400, "Invalid filename 'x/demo_pkg-1.0-py3-none-any.whl': must not contain '/' or '\\'",
        "slash-in-filename", filename="x/" + WHEEL_NAME),
    # The client escapes a backslash inside the quoted filename; the server sees one.
    bad(400, "Invalid filename '..\\\\demo_pkg-1.0-py3-none-any.whl': must not contain '/' or"
        " '\\'", "backslash-in-filename", filename="..\\\\" + WHEEL_NAME),
    bad(400, "Invalid filename 'demo_pkg\\x00-1.0-py3-none-any.whl': only printable ASCII"
        " without spaces is allowed", "nul-in-filename",
        filename="demo_pkg\x00-1.0-py3-none-any.whl"),
    bad(400, "Invalid filename 'demo_pkg\\x01-1.0-py3-none-any.whl': only printable ASCII"
        " without spaces is allowed", "control-in-filename",
        filename="demo_pkg\x01-1.0-py3-none-any.whl"),
    bad(400, "Invalid filename 'demo_pkg-1.0-py3-none-any.whl\\x7f': only printable ASCII"
        " without spaces is allowed", "del-in-filename", filename=WHEEL_NAME + "\x7f"),
    bad(400, "Invalid filename 'd\\xe9mo_pkg-1.0-py3-none-any.whl': only printable ASCII"
        " without spaces is allowed", "non-ascii-filename",
        filename="d\u00e9mo_pkg-1.0-py3-none-any.whl"),
    bad(400, "Invalid file extension: use .whl or .tar.gz", "zip-sdist",
        filename="demo_pkg-1.0.zip"),
    bad(400, "Invalid file extension: use .whl or .tar.gz", "exe", filename="demo_pkg-1.0.exe"),
    bad(400, f"Invalid filename '{'d' * 97}...': longer than 255 bytes", "filename-too-long",
        filename=LONG_NAME),
    bad(400, f"filetype 'sdist' does not match '{WHEEL_NAME}'", "wheel-sent-as-sdist",
        filetype="sdist"),
    bad(400, f"filetype 'bdist_wheel' does not match '{SDIST_NAME}'", "sdist-sent-as-wheel",
        dist=sdist(), filename=SDIST_NAME, filetype="bdist_wheel"),
    bad(400, "filetype 'bdist_egg' does not match 'demo_pkg-1.0-py3-none-any.whl'",
        "unknown-filetype", filetype="bdist_egg"),
    bad(400, "Include at least one message digest (sha256_digest)", "no-digest",
        sha256_digest=None, blake2_256_digest=None, md5_digest=None),
    bad(400, "Include at least one message digest (sha256_digest)", "empty-digests",
        sha256_digest="", blake2_256_digest=" ", md5_digest=""),
    bad(400, "Invalid sha256_digest: use a hex-encoded sha256 digest", "sha256-too-short",
        sha256_digest="abc123"),
    bad(400, "Invalid sha256_digest: use a hex-encoded sha256 digest", "sha256-not-hex",
        sha256_digest="g" * 64),
    bad(400, "Invalid sha256_digest: use a hex-encoded sha256 digest", "sha256-too-long",
        sha256_digest="a" * 65),
    bad(400, "Invalid blake2_256_digest: use a hex-encoded blake2_256 digest", "blake2-too-short",
        blake2_256_digest="a" * 63),
    bad(400, "Invalid md5_digest: use a hex-encoded md5 digest", "md5-as-sha256-length",
        md5_digest="a" * 64),
    bad(400, "Invalid md5_digest: use a hex-encoded md5 digest", "md5-as-urlsafe-base64",
        md5_digest="1B2M2Y8AsgTpgAmY7PhCfg=="),
    bad(400, DIGEST_MISMATCH, "sha256-mismatch", sha256_digest=hexdigests(OTHER)["sha256_digest"]),
    bad(400, DIGEST_MISMATCH, "blake2-mismatch",
        blake2_256_digest=hexdigests(OTHER)["blake2_256_digest"]),
    bad(400, DIGEST_MISMATCH, "md5-mismatch", md5_digest=hexdigests(OTHER)["md5_digest"]),
    bad(400, DIGEST_MISMATCH, "only-sha256-and-it-is-wrong", sha256_digest="0" * 64,
        blake2_256_digest=None, md5_digest=None),
    bad(400, "Invalid distribution file: not a valid zip archive", "wheel-not-an-archive",
        dist=b"just some text"),
    bad(400, "Invalid distribution file: not a valid zip archive", "wheel-truncated",
        dist=wheel()[:-30]),
    bad(400, "Invalid distribution file: not a valid gzip-compressed tar archive",
        "sdist-not-an-archive", dist=b"PK\x03\x04 not gzip", filename=SDIST_NAME),
    bad(400, "Invalid distribution file: not a valid gzip-compressed tar archive",
        "sdist-corrupt", dist=sdist()[:40] + b"\xff" * 60, filename=SDIST_NAME),
    bad(400, "Invalid distribution file: no demo_pkg-1.0.dist-info/METADATA",
        "wheel-without-metadata", dist=wheel(dist_info="demo_pkg-1.0.dist-info").replace(
            b"dist-info/METADATA", b"dist-info/METADATX")),
    bad(400, "Invalid metadata: version: invalid 'one point oh'", "metadata-bad-version",
        dist=wheel(META.replace(b"Version: 1.0", b"Version: one point oh"))),
    bad(400, "Invalid metadata: name: missing", "metadata-no-name",
        dist=wheel(META.replace(b"Name: Demo.Pkg\n", b""))),
    bad(400, "Invalid metadata: metadata_version: unsupported '3.0'", "metadata-version-3",
        dist=wheel(META.replace(b"2.1", b"3.0"))),
    bad(400, "Invalid metadata: not UTF-8", "metadata-not-utf8",
        dist=wheel(META + b"Author: Zo\xeb\n")),
    bad(400, f"Filename '{WHEEL_NAME}' does not match metadata name 'Demo.Pkg' version '2.0'",
        "filename-version-differs-from-metadata",
        dist=wheel(META.replace(b"Version: 1.0", b"Version: 2.0"))),
    bad(400, f"Filename '{WHEEL_NAME}' does not match metadata name 'other' version '1.0'",
        "filename-name-differs-from-metadata",
        dist=wheel(META.replace(b"Name: Demo.Pkg", b"Name: other"))),
    bad(400, "Filename 'demo_pkg-1.0.tar.gz' does not match metadata name 'Demo.Pkg' version"
        " '1.1'", "sdist-version-differs-from-metadata",
        dist=sdist(META.replace(b"Version: 1.0", b"Version: 1.1")), filename=SDIST_NAME),
    bad(400, "Form field name 'other' does not match file metadata 'Demo.Pkg'",
        "form-name-differs-from-metadata", name="other"),
    bad(400, "Form field version '2.0' does not match file metadata '1.0'",
        "form-version-differs-from-metadata", version="2.0"),
    bad(400, "Form field version 'latest' does not match file metadata '1.0'",
        "form-version-invalid", version="latest"),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "status", "message"), BAD_UPLOADS)
def test_bad_upload_is_refused_and_leaves_nothing_behind(
    app, client, owner, changes, status, message
):
    before = stored(app)

    response = upload(client, URL, data=twine_form(**changes), headers=owner)

    assert response.status_code == status
    assert refusal(response) == message
    assert stored(app) == before
    assert before["tmp"] == []


def test_malformed_multipart_body_is_refused_and_leaves_nothing_behind(app, client, owner):
    # A newline in the filename breaks the part's header: werkzeug drops the unreadable part.
    response = upload(client, URL, data=twine_form(filename="demo\n.whl"), headers=owner)

    assert response.status_code == 400
    assert refusal(response) == "Upload payload does not have a file"
    assert stored(app) == {"files": 0, "packages": 0, "blobs": [], "tmp": []}


def test_good_wheel_is_stored_with_its_metadata(app, client, owner):
    meta = META + b"Author: Zo\xc3\xab\r\nDescription-Content-Type: text/plain\n\nHello\r\n"
    content = wheel(meta)
    sha256, meta_sha256 = hashlib.sha256(content).hexdigest(), hashlib.sha256(meta).hexdigest()

    response = upload(client, URL, data=twine_form(content), headers=owner)

    assert response.status == f"200 Uploaded {WHEEL_NAME} to channel 'ch'"
    blobs = sorted([sha256, meta_sha256])
    assert stored(app) == {"files": 1, "packages": 1, "blobs": blobs, "tmp": []}
    row = (
        get_db()
        .execute(
            "SELECT name, display_name, version, filename, sha256, size, metadata_sha256"
            " FROM files JOIN packages ON packages.id = files.package_id"
        )
        .fetchone()
    )
    assert tuple(row) == (
        "demo-pkg", "Demo.Pkg", "1.0", WHEEL_NAME, sha256, len(content), meta_sha256
    )  # fmt: skip
    file_url = f"/api/repo/ch/files/{sha256}/{WHEEL_NAME}"
    assert send(client, "GET", file_url, headers=owner).data == content
    assert send(client, "GET", file_url + ".metadata", headers=owner).data == meta


def test_good_sdist_is_stored_without_a_metadata_file(app, client, owner):
    content = sdist()
    sha256 = hashlib.sha256(content).hexdigest()

    response = upload(client, URL, data=twine_form(content, SDIST_NAME), headers=owner)

    assert response.status_code == 200
    assert stored(app) == {"files": 1, "packages": 1, "blobs": [sha256], "tmp": []}
    file_url = f"/api/repo/ch/files/{sha256}/{SDIST_NAME}"
    assert send(client, "GET", file_url, headers=owner).data == content
    assert send(client, "GET", file_url + ".metadata", headers=owner).status_code == 404


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"md5_digest": None, "blake2_256_digest": None}, id="sha256-only"),
        pytest.param({"md5_digest": None, "sha256_digest": None}, id="blake2-only"),
        pytest.param({"sha256_digest": None, "blake2_256_digest": None}, id="md5-only"),
        pytest.param(
            {"sha256_digest": hashlib.sha256(wheel()).hexdigest().upper()}, id="upper-case-hex"
        ),
        pytest.param({"protocol_version": None, "filetype": None}, id="no-protocol-or-filetype"),
        pytest.param({"name": "demo_pkg", "version": "1.0.0"}, id="form-name-not-canonical"),
        pytest.param({"description": "x" * 600_000}, id="description-over-500-kb"),
        pytest.param({"gpg_signature": (io.BytesIO(b"sig"), WHEEL_NAME + ".asc")}, id="signature"),
        pytest.param({"attestations": "[]", "comment": "hi", "unknown": "y"}, id="extra-fields"),
    ],
)
def test_upload_is_accepted_in_every_form_twine_and_uv_send(app, client, owner, changes):
    sha256 = hashlib.sha256(wheel()).hexdigest()

    response = upload(client, URL, data=twine_form(**changes), headers=owner)

    assert response.status_code == 200, response.status
    blobs = sorted([sha256, hashlib.sha256(META).hexdigest()])
    assert stored(app) == {"files": 1, "packages": 1, "blobs": blobs, "tmp": []}


@pytest.mark.parametrize("url", ["/api/repo/ch", "/api/repo/ch/"])
def test_upload_url_works_with_and_without_trailing_slash(client, owner, url):
    assert upload(client, url, data=twine_form(), headers=owner).status_code == 200


def test_reupload_identical_file_is_ok_and_stores_nothing_new(app, client, owner):
    assert upload(client, URL, data=twine_form(), headers=owner).status_code == 200
    before = stored(app), get_db().execute("SELECT revision FROM channels").fetchone()[0]

    response = upload(client, URL, data=twine_form(), headers=owner)

    assert response.status == "200 File already exists (identical content)"
    assert (stored(app), get_db().execute("SELECT revision FROM channels").fetchone()[0]) == before


def test_upload_that_loses_a_race_to_an_identical_one_is_ok(app, client, owner, monkeypatch):
    # python.md 1.3: the second of two identical uploads in parallel passed the duplicate check
    # before the first committed; its INSERT then fails, and that must not be a 500.
    assert upload(client, URL, data=twine_form(), headers=owner).status_code == 200
    before = stored(app)
    check = files.existing
    answers = [False]
    monkeypatch.setattr(files, "existing", lambda *args: answers.pop() if answers else check(*args))

    response = upload(client, URL, data=twine_form(), headers=owner)

    assert response.status == "200 File already exists (identical content)"
    assert answers == [] and stored(app) == before


def test_same_filename_with_other_content_is_a_conflict(app, client, owner):
    assert upload(client, URL, data=twine_form(), headers=owner).status_code == 200
    before = stored(app)
    sha256 = hashlib.sha256(wheel()).hexdigest()

    response = upload(client, URL, data=twine_form(OTHER), headers=owner)

    assert response.status_code == 409
    assert refusal(response) == (
        f"File already exists ('{WHEEL_NAME}', sha256 {sha256[:12]}...) with different content"
    )
    assert stored(app) == before


def test_other_content_sent_with_the_stored_files_digest_is_a_mismatch_not_a_duplicate(
    app, client, owner
):
    # python.md 1.3: rule 13 comes after digest verification, so a corrupted retry of an
    # uploaded file is not answered 200.
    assert upload(client, URL, data=twine_form(), headers=owner).status_code == 200
    before = stored(app)

    response = upload(client, URL, data=twine_form(OTHER, **hexdigests(wheel())), headers=owner)

    assert response.status_code == 400
    assert refusal(response) == DIGEST_MISMATCH
    assert stored(app) == before


@pytest.mark.parametrize("member", [False, True], ids=["owners-read-token", "read-members-token"])
def test_upload_needs_write_rights(app, client, repo, member):
    made = repo.owner_with_channel("alice", "ch")
    if member:
        reader = repo.user("bob")
        accounts.grant(get_db(), made.channel_id, reader, "read")
        token_id, secret = accounts.create_token(get_db(), reader)
    else:
        token_id, secret = accounts.create_token(get_db(), made.user_id, made.channel_id, "read")

    response = upload(client, URL, data=twine_form(), headers=token_auth(secret))

    assert response.status_code == 403
    assert refusal(response) == f"Token {token_id} may not upload to channel 'ch'"
    assert stored(app) == {"files": 0, "packages": 0, "blobs": [], "tmp": []}


# --- the size limit ---------------------------------------------------------------------------


def noise(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def test_upload_over_the_limit_is_too_large(small):
    app, auth = small

    form = twine_form(wheel(code=noise(1100_000)))

    response = upload(app.test_client(), URL, data=form, headers=auth)

    assert response.status_code == 413
    assert refusal(response) == "File too large: limit is 1 MB"
    assert stored(app) == {"files": 0, "packages": 0, "blobs": [], "tmp": []}


def test_streamed_upload_over_the_limit_is_cut_off_and_leaves_no_temp_file(small):
    # gunicorn passes a chunked body without Content-Length and sets wsgi.input_terminated:
    # werkzeug then counts while the form parser writes into the pending blob.
    app, auth = small
    form = twine_form(wheel(code=noise(1100_000)))
    stream, filename = form.pop("content")
    boundary, body = encode_multipart({**form, "content": FileStorage(stream, filename)})

    response = upload(
        app.test_client(),
        URL,
        input_stream=io.BytesIO(body),
        headers=auth,
        content_type=f"multipart/form-data; boundary={boundary}",
        environ_overrides={"CONTENT_LENGTH": "", "wsgi.input_terminated": True},
    )

    assert response.status_code == 413
    assert refusal(response) == "File too large: limit is 1 MB"
    assert stored(app) == {"files": 0, "packages": 0, "blobs": [], "tmp": []}


def test_upload_under_the_limit_is_accepted(small):
    app, auth = small
    form = twine_form(wheel(code=noise(900_000)))

    response = upload(app.test_client(), URL, data=form, headers=auth)

    assert response.status_code == 200
    assert stored(app)["files"] == 1
