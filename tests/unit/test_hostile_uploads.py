"""The hostile-upload corpus at the HTTP level, beyond the parser tests: repeated form fields,
wrong content types, truncated bodies, archives unsafe to unpack (every kind we accept against
every way out of the folder), control characters and non-UTF-8 in metadata, huge form fields.
Each gets a clear 4xx and leaves nothing behind."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import NamedTuple

import pytest
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from .builders import (
    META,
    R_DESCRIPTION,
    SDIST_NAME,
    Member,
    Special,
    r_form,
    r_source,
    refusal,
    send,
    stored,
    tar_bytes,
    twine_form,
    wheel,
    zip_bytes,
)

URL = "/api/repo/ch/"
NOTHING = {"files": 0, "packages": 0, "blobs": [], "tmp": []}


def special_tar_gz(root: str, name: str, content: bytes | str | Special) -> bytes:
    """A tar.gz whose member `root/name` is `content`, beside a regular file."""
    return tar_bytes([(f"{root}/README", b"hi"), (f"{root}/{name}", content)])


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
    pytest.param(twine_form(special_tar_gz("demo_pkg-1.0", "PKG-INFO", Special("chardev")),
                            SDIST_NAME),
                 "Invalid distribution file: member 'demo_pkg-1.0/PKG-INFO' is a character"
                 " device", id="sdist-pkg-info-is-a-device"),
    pytest.param(twine_form(special_tar_gz("demo_pkg-1.0", "PKG-INFO", "README"), SDIST_NAME),
                 "Invalid distribution file: PKG-INFO is not a regular file",
                 id="sdist-pkg-info-is-a-symlink"),
    pytest.param(r_form(special_tar_gz("abc", "DESCRIPTION", Special("chardev"))),
                 "Invalid R package: member 'abc/DESCRIPTION' is a character device",
                 id="r-description-is-a-device"),
    pytest.param(r_form(special_tar_gz("abc", "DESCRIPTION", Special("fifo"))),
                 "Invalid R package: member 'abc/DESCRIPTION' is a fifo",
                 id="r-description-is-a-fifo"),
    pytest.param(r_form(special_tar_gz("abc", "DESCRIPTION", "/etc/passwd")),
                 "Invalid R package: link 'abc/DESCRIPTION' -> '/etc/passwd' points outside its"
                 " top directory", id="r-description-is-an-escaping-symlink"),
    pytest.param(r_form(special_tar_gz("abc", "DESCRIPTION", "README")),
                 "Invalid R package: DESCRIPTION is not a regular file",
                 id="r-description-is-a-symlink"),
    pytest.param(r_form(special_tar_gz("abc", "../../etc/cron.d/x", b"")),
                 "Invalid R package: unsafe member name 'abc/../../etc/cron.d/x'",
                 id="r-member-path-traversal"),
    pytest.param(r_form(special_tar_gz("/abc", "DESCRIPTION", b"")),
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


# Archives unsafe to unpack. pip, older tarfile users and R's untar() unpack what we serve, and
# R's internal untar() follows a symlink out of its folder: every kind we accept, against every
# way out. The unsafe members come after PKG-INFO or DESCRIPTION, which must not end the check.
MAC_BUILT = (
    R_DESCRIPTION + b"Built: R 4.4.1; aarch64-apple-darwin20; 2026-01-01 10:00:00 UTC; unix\n"
)
WIN_BUILT = (
    R_DESCRIPTION + b"Built: R 4.4.1; x86_64-w64-mingw32; 2026-01-01 10:00:00 UTC; windows\n"
)
BINARY = {"filetype": "cran_binary_package"}


def sdist_form(extra: list[Member]) -> dict:
    return twine_form(tar_bytes([("demo_pkg-1.0/PKG-INFO", META), *extra]), SDIST_NAME)


def wheel_form(extra: list[Member]) -> dict:
    return twine_form(wheel(extra=tuple(extra)))


def r_source_form(extra: list[Member]) -> dict:
    return r_form(tar_bytes([("abc/DESCRIPTION", R_DESCRIPTION), *extra]))


def r_macos_form(extra: list[Member]) -> dict:
    return r_form(tar_bytes([("abc/DESCRIPTION", MAC_BUILT), *extra]), "abc_2.1.tgz", **BINARY)


def r_windows_form(extra: list[Member]) -> dict:
    return r_form(zip_bytes([("abc/DESCRIPTION", WIN_BUILT), *extra]), "abc_2.1.zip", **BINARY)


class Kind(NamedTuple):
    """One kind of archive we accept: its top directory, the upload form of a good archive
    with `extra` members last, how its refusals start, and whether it is a zip."""

    top: str
    form: Callable[[list[Member]], dict]
    refusal: str
    zipped: bool


KINDS = {
    "sdist": Kind("demo_pkg-1.0", sdist_form, "Invalid distribution file", False),
    "wheel": Kind("demo_pkg", wheel_form, "Invalid distribution file", True),
    "r-source": Kind("abc", r_source_form, "Invalid R package", False),
    "r-macos-tgz": Kind("abc", r_macos_form, "Invalid R package", False),
    "r-windows-zip": Kind("abc", r_windows_form, "Invalid R package", True),
}


def unsafe_members(top: str, zipped: bool) -> dict[str, tuple[list[Member], str]]:
    """Each way out of the folder: (the members, the refusal) in an archive with `top`; a zip
    holds no symlink at all, nor hard links, and a tar no sockets."""
    link_refusal = f"link '{top}/up' -> '../../../../etc' points outside its top directory"
    cases = {
        "dotdot": ([(f"{top}/../../evil", b"x")], f"unsafe member name '{top}/../../evil'"),
        "absolute": ([("/tmp/evil", b"x")], "unsafe member name '/tmp/evil'"),
        "drive": ([("C:/x", b"x")], "unsafe member name 'C:/x'"),
        "backslash": ([(f"{top}\\..\\..\\evil", b"x")],
                      f"unsafe member name '{top}\\\\..\\\\..\\\\evil'"),
        "escaping-symlink": ([(f"{top}/up", "../../../../etc")],
                             f"member '{top}/up' is a symlink" if zipped else link_refusal),
        "below-symlink": ([(f"{top}/evil", "R"), (f"{top}/evil/pwned", b"x")],
                          f"member '{top}/evil' is a symlink" if zipped
                          else f"member '{top}/evil/pwned' is below the symlink '{top}/evil'"),
        "chardev": ([(f"{top}/tty", Special("chardev"))],
                    f"member '{top}/tty' is a character device"),
        "blockdev": ([(f"{top}/sda", Special("blockdev"))],
                     f"member '{top}/sda' is a block device"),
        "fifo": ([(f"{top}/pipe", Special("fifo"))], f"member '{top}/pipe' is a fifo"),
    }  # fmt: skip
    if zipped:
        cases["socket"] = ([(f"{top}/sock", Special("socket"))], f"member '{top}/sock' is a socket")
    else:
        cases["escaping-hardlink"] = (
            [(f"{top}/passwd", Special("hardlink", "/etc/passwd"))],
            f"link '{top}/passwd' -> '/etc/passwd' points outside its top directory",
        )
    return cases


UNSAFE = [
    pytest.param(kind.form(members), f"{kind.refusal}: {message}", id=f"{name}-{case}")
    for name, kind in KINDS.items()
    for case, (members, message) in unsafe_members(kind.top, kind.zipped).items()
]


@pytest.mark.parametrize(("form", "message"), UNSAFE)
def test_archive_unsafe_to_unpack_is_refused_and_leaves_nothing_behind(
    app, client, owner, form, message
):
    before = stored(app)

    response = send(client, "POST", URL, data=form, headers=owner)

    assert response.status_code == 400, response.status
    assert refusal(response) == message
    assert stored(app) == before == NOTHING


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param([("demo_pkg-1.0/README.md", b"hi"),
                      ("demo_pkg-1.0/docs/README", "../README.md")], id="symlink-to-a-sibling"),
        pytest.param([("demo_pkg-1.0/src/a.py", b""),
                      ("demo_pkg-1.0/docs/b.py", "../src/./a.py")], id="symlink-through-dot"),
        pytest.param([("demo_pkg-1.0/README.md", b"hi"),
                      ("demo_pkg-1.0/README", Special("hardlink", "demo_pkg-1.0/README.md"))],
                     id="hard-link-inside"),
        pytest.param([("demo_pkg-1.0/self", ".")], id="symlink-to-the-top-directory"),
    ],
)  # fmt: skip
def test_sdist_with_links_inside_its_top_directory_is_accepted(app, client, owner, extra):
    response = send(client, "POST", URL, data=sdist_form(extra), headers=owner)

    assert response.status_code == 200, response.status
    assert stored(app)["files"] == 1
    assert stored(app)["tmp"] == []


def test_r_source_with_a_symlink_inside_is_accepted(app, client, owner):
    form = r_source_form([("abc/R/abc.R", b"f <- 1\n"), ("abc/inst/abc.R", "../R/abc.R")])

    response = send(client, "POST", URL, data=form, headers=owner)

    assert response.status_code == 200, response.status
    assert stored(app)["files"] == 1
