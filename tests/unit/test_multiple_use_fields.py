"""twine sends a multiple-use core-metadata field once per value (pluggy 1.5.0's four
`Platform:` lines are four `platform` fields): those may repeat, the fields that say what an
upload is may not."""

from __future__ import annotations

import pytest

from .builders import WHEEL_NAME, r_form, refusal, send, stored, twine_form

URL = "/api/repo/ch"
# The form fields twine 7 makes of the multiple-use fields of the core-metadata spec.
MULTIPLE_USE = {
    "platform": ["linux", "darwin", "win32", "cygwin"],
    "supported_platform": ["RedHat 7.2", "Debian 12"],
    "classifiers": ["Programming Language :: Python", "Typing :: Typed"],
    "keywords": ["plugins", "hooks"],
    "requires_dist": ["packaging>=20", "tomli; python_version < '3.11'"],
    "provides_extra": ["dev", "testing"],
    "project_urls": ["Homepage, https://example.org", "Issues, https://example.org/issues"],
    "license_file": ["LICENSE", "NOTICE"],
    "dynamic": ["Requires-Dist", "Classifier"],
    "requires_external": ["libpq", "libffi"],
    "provides_dist": ["demo", "demo-compat"],
    "obsoletes_dist": ["olddemo", "olderdemo"],
    "requires": ["os", "sys"],
    "provides": ["demo", "demo.sub"],
    "obsoletes": ["gadget", "widget"],
}


def test_every_multiple_use_field_may_come_several_times(app, client, owner):
    response = send(client, "POST", URL, data=twine_form(**MULTIPLE_USE), headers=owner)

    assert response.status_code == 200, response.status
    assert response.get_data(as_text=True) == f"Uploaded {WHEEL_NAME} to channel 'ch'\n"
    assert stored(app)["files"] == 1


@pytest.mark.parametrize(
    "field", ["protocol_version", "filetype", "version", "metadata_version", "pyversion",
              "md5_digest", "blake2_256_digest"],
)  # fmt: skip
def test_a_field_twine_sends_once_is_refused_twice(app, client, owner, field):
    value = twine_form()[field]

    response = send(client, "POST", URL, data=twine_form(**{field: [value, value]}),
                    headers=owner)  # fmt: skip

    assert response.status_code == 400
    assert refusal(response) == f"Form field '{field}' appears more than once"
    assert stored(app)["files"] == 0


@pytest.mark.parametrize("field, value", [("platform", "big-sur-arm64"), ("rversion", "4.4")])
def test_r_uploads_take_platform_and_rversion_once(app, client, owner, field, value):
    response = send(client, "POST", URL, data=r_form(**{field: [value, value]}), headers=owner)

    assert response.status_code == 400
    assert refusal(response) == f"Form field '{field}' appears more than once"
    assert stored(app) == {"files": 0, "packages": 0, "blobs": [], "tmp": []}
