"""The hostile-upload corpus at the HTTP level, beyond the parser tests: repeated form fields,
wrong content types, truncated bodies, device files and links in archives, control characters
and non-UTF-8 in metadata, huge form fields. Each gets a clear 4xx and leaves nothing behind."""

from __future__ import annotations

import gzip
import io
import os
import tarfile

import pytest
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from .builders import (
    META,
    R_DESCRIPTION,
    SDIST_NAME,
    r_form,
    r_source,
    refusal,
    send,
    stored,
    twine_form,
    wheel,
)

URL = "/api/repo/ch/"
NOTHING = {"files": 0, "packages": 0, "blobs": [], "tmp": []}


def special_tar_gz(root: str, name: str, kind: bytes, target: str = "") -> bytes:
    """A tar.gz whose member `root/name` is a device, fifo or link, beside a regular file."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        regular = tarfile.TarInfo(f"{root}/README")
        regular.size = 2
        tar.addfile(regular, io.BytesIO(b"hi"))
        special = tarfile.TarInfo(f"{root}/{name}")
        special.type, special.linkname = kind, target
        tar.addfile(special)
    return gzip.compress(buffer.getvalue(), mtime=0)


def repeated(form: dict, field: str, value) -> MultiDict:
    multi = MultiDict(form)
    multi.add(field, value)
    return multi


HOSTILE = [
    pytest.param(repeated(twine_form(), "sha256_digest", "0" * 64),
                 "Form field 'sha256_digest' appears more than once", id="two-digests"),
    pytest.param(repeated(twine_form(), "name", "other"),
                 "Form field 'name' appears more than once", id="two-names"),
    pytest.param(repeated(twine_form(), ":action", "file_upload"),
                 "Form field ':action' appears more than once", id="two-actions"),
    pytest.param(repeated(twine_form(), "content", (io.BytesIO(wheel()), "demo_pkg-1.0.tar.gz")),
                 "Form field 'content' appears more than once", id="two-files"),
    pytest.param(repeated(r_form(), "filetype", "cran_binary_package"),
                 "Form field 'filetype' appears more than once", id="two-r-filetypes"),
    pytest.param(twine_form(special_tar_gz("demo_pkg-1.0", "PKG-INFO", tarfile.CHRTYPE),
                            SDIST_NAME),
                 "Invalid distribution file: PKG-INFO is not a regular file",
                 id="sdist-pkg-info-is-a-device"),
    pytest.param(r_form(special_tar_gz("abc", "DESCRIPTION", tarfile.CHRTYPE)),
                 "Invalid R package: DESCRIPTION is not a regular file",
                 id="r-description-is-a-device"),
    pytest.param(r_form(special_tar_gz("abc", "DESCRIPTION", tarfile.FIFOTYPE)),
                 "Invalid R package: DESCRIPTION is not a regular file",
                 id="r-description-is-a-fifo"),
    pytest.param(r_form(special_tar_gz("abc", "DESCRIPTION", tarfile.SYMTYPE, "/etc/passwd")),
                 "Invalid R package: DESCRIPTION is not a regular file",
                 id="r-description-is-a-symlink"),
    pytest.param(r_form(special_tar_gz("abc", "../../etc/cron.d/x", tarfile.REGTYPE)),
                 "Invalid R package: unsafe member name 'abc/../../etc/cron.d/x'",
                 id="r-member-path-traversal"),
    pytest.param(r_form(special_tar_gz("/abc", "DESCRIPTION", tarfile.REGTYPE)),
                 "Invalid R package: unsafe member name '/abc/README'",
                 id="r-member-absolute-path"),
    pytest.param(twine_form(wheel(META.replace(b"Demo.Pkg", b"Demo\x01Pkg"))),
                 "Invalid metadata: name: invalid project name 'Demo\\x01Pkg'",
                 id="control-char-in-name"),
    pytest.param(twine_form(wheel(META + b"Summary2: caf\xe9\n")),
                 "Invalid metadata: not UTF-8", id="latin1-metadata"),
    pytest.param(r_form(r_source(R_DESCRIPTION.replace(b"Test", b"T\xe9st"))),
                 "Invalid DESCRIPTION: not UTF-8 and no Encoding field", id="latin1-description"),
]  # fmt: skip


@pytest.mark.parametrize(("form", "message"), HOSTILE)
def test_hostile_upload_is_refused_and_leaves_nothing_behind(app, client, owner, form, message):
    response = send(client, "POST", URL, data=form, headers=owner)

    assert response.status_code == 400, response.status
    assert refusal(response) == message
    assert stored(app) == NOTHING


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{":action": "file_upload"}'),
        ("text/plain", b"file_upload"),
        ("application/octet-stream", wheel()),
        ("application/x-www-form-urlencoded", b"%3Aaction=file_upload&content=abc"),
    ],
)
def test_wrong_content_type_is_refused(app, client, owner, content_type, body):
    response = send(client, "POST", URL, data=body, headers={**owner, "Content-Type": content_type})

    assert response.status_code == 400
    assert refusal(response) in (
        "Missing form field ':action' (Python) or 'filetype' (R)",
        "Upload payload does not have a file",
    )
    assert stored(app) == NOTHING


def test_truncated_multipart_body_is_refused_and_leaves_no_temp_file(app, client, owner):
    form = twine_form(wheel(code=b"x" * 200_000))
    form["content"] = FileStorage(*form["content"])
    boundary, body = encode_multipart(form)

    response = send(client, "POST", URL, input_stream=io.BytesIO(body[: len(body) // 2]),
                    headers={**owner, "Content-Length": str(len(body))},
                    content_type=f"multipart/form-data; boundary={boundary}")  # fmt: skip

    assert response.status_code == 400
    assert refusal(response)
    assert stored(app) == NOTHING


def test_huge_form_field_is_413_naming_the_field_limit(app, client, owner):
    form = twine_form(description="x" * (17 * 1024 * 1024))

    response = send(client, "POST", URL, data=form, headers=owner)

    assert response.status_code == 413
    assert refusal(response) == (
        "Form too large: limit is 16 MB for a field other than a file and 10000 fields"
    )
    assert stored(app) == NOTHING


def test_metadata_of_many_megabytes_is_refused(app, client, owner):
    # Hex digits: incompressible enough not to trip the zip-bomb check first.
    readme = os.urandom(9 * 1024 * 1024).hex().encode()
    huge = META + b"Description-Content-Type: text/plain\n\n" + readme

    response = send(client, "POST", URL, data=twine_form(wheel(huge)), headers=owner)

    assert response.status_code == 400
    assert refusal(response) == "Invalid distribution file: METADATA is larger than 16 MiB"
    assert stored(app) == NOTHING
