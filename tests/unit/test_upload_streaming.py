"""A large upload through the real app as gunicorn hands it over: the form parser reads the
body a mebibyte at a time, and the digests hashed in threads are the ones checked (twine's)
and recorded (R's MD5sum)."""

from __future__ import annotations

import hashlib
import io
import json
import os

from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from repo.db import get_db
from repo.upload import READ_SIZE

from .builders import (
    R_DESCRIPTION,
    R_SOURCE_NAME,
    r_form,
    refusal,
    send,
    stored,
    tar_gz,
    twine_form,
    wheel,
)

URL = "/api/repo/ch/"
MiB = 1024 * 1024
NOTHING = {"files": 0, "packages": 0, "blobs": [], "tmp": []}


class GunicornBody:
    """A request body without readinto(), as gunicorn's is, recording the size of every read
    the application asks for (tell, seek and close are for werkzeug's test client)."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)
        self.reads: list[int] = []
        self.tell, self.seek, self.close = self._data.tell, self._data.seek, self._data.close

    def read(self, size: int = -1) -> bytes:
        self.reads.append(size)
        return self._data.read(size)


def post(client, form: dict, auth: dict) -> tuple[object, GunicornBody]:
    """POST `form` as one multipart body read through a GunicornBody."""
    stream, filename = form.pop("content")
    boundary, data = encode_multipart({**form, "content": FileStorage(stream, filename)})
    body = GunicornBody(data)
    response = send(client, "POST", URL, input_stream=body, headers=auth,
                    content_type=f"multipart/form-data; boundary={boundary}",
                    content_length=len(data))  # fmt: skip
    return response, body


def test_a_large_upload_is_read_a_mebibyte_at_a_time_and_its_digests_checked(app, client, owner):
    dist = wheel(code=os.urandom(5 * MiB))

    response, body = post(client, twine_form(dist), owner)  # with all three digests

    assert response.status_code == 200, response.status
    assert len(body.reads) > 5 and set(body.reads[:-1]) == {READ_SIZE}
    assert body.reads[-1] <= READ_SIZE
    (sha256, metadata_sha256) = (
        get_db().execute("SELECT sha256, metadata_sha256 FROM files").fetchone()
    )
    assert sha256 == hashlib.sha256(dist).hexdigest()
    assert stored(app) == {"files": 1, "packages": 1, "blobs": sorted([sha256, metadata_sha256]),
                           "tmp": []}  # fmt: skip


def test_a_large_upload_with_a_wrong_md5_is_refused_and_leaves_nothing(app, client, owner):
    dist = wheel(code=os.urandom(3 * MiB))
    wrong = hashlib.md5(dist + b"x").hexdigest()

    response, _ = post(client, twine_form(dist, md5_digest=wrong), owner)

    assert response.status_code == 400
    assert refusal(response) == (
        "The digest supplied does not match a digest calculated from the uploaded file"
    )
    assert stored(app) == NOTHING


def test_a_large_r_package_records_the_md5_of_its_file(app, client, owner):
    tarball = tar_gz({"abc/DESCRIPTION": R_DESCRIPTION, "abc/R/abc.R": b"f <- 1\n",
                      "abc/inst/extdata/model.bin": os.urandom(3 * MiB)})  # fmt: skip

    response, body = post(client, r_form(tarball, R_SOURCE_NAME), owner)

    assert response.status_code == 200, response.status
    assert set(body.reads[:-1]) == {READ_SIZE}
    (metadata,) = get_db().execute("SELECT metadata FROM files").fetchone()
    assert json.loads(metadata)["MD5sum"] == hashlib.md5(tarball).hexdigest()
    assert stored(app)["tmp"] == []
