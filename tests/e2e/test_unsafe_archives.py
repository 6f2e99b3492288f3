"""Archives unsafe to unpack, end to end: twine and curl show the refusal naming the member and
the server keeps nothing; an R package we accept, R's own internal untar() (which follows
symlinks) unpacks inside its folder."""

from __future__ import annotations

import os
import urllib.request

import pytest

from ..unit.builders import META, R_DESCRIPTION, SDIST_NAME, tar_bytes
from .live import rscript, run, tool, twine_upload


@pytest.fixture(scope="module")
def token(live_server):
    """A write token for alice's channel dev."""
    live_server.cli("user", "create", "alice", "--password", "alice-password")
    live_server.cli("channel", "create", "dev", "--owner", "alice")
    return live_server.cli("token", "create", "alice", "--channel", "dev", "--scope", "write")


def curl_upload(url: str, path, token: str) -> tuple[int, str]:
    """(status, body) of `curl -F filetype=cran_source_package -F content=@path`."""
    result = run([tool("curl"), "-sS", "-w", "\n%{http_code}", "-H", f"X-Auth: {token}",
                  "-F", "filetype=cran_source_package", "-F", f"content=@{path}", url],
                 {"PATH": "/usr/bin:/bin"})  # fmt: skip
    body, _, status = result.stdout.rpartition("\n")
    return int(status), body.strip()


def kept(server) -> tuple:
    """What an upload can leave behind: rows, committed blobs and pending files."""
    return server.query("SELECT count(*) FROM files"), server.blobs(), server.pending()


def test_twine_shows_why_an_sdist_with_an_escaping_symlink_is_refused(
    live_server, token, tmp_path, client_env
):
    path = tmp_path / SDIST_NAME
    members = [("demo_pkg-1.0/PKG-INFO", META), ("demo_pkg-1.0/up", "../../../../etc")]
    path.write_bytes(tar_bytes(members))
    before = kept(live_server)

    result = twine_upload(f"{live_server.url}/api/repo/dev/", [path], client_env, "__token__",
                          token)  # fmt: skip

    assert result.returncode != 0
    said = " ".join((result.stdout + result.stderr).split())
    refusal = ("Invalid distribution file: link 'demo_pkg-1.0/up' -> '../../../../etc' points"
               " outside its top directory")  # fmt: skip
    assert refusal in said, said
    assert kept(live_server) == before and before[2] == []


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([("abc/evil", "/tmp"), ("abc/evil/pwned", b"x")],
         "Invalid R package: link 'abc/evil' -> '/tmp' points outside its top directory"),
        ([("abc/evil", "R"), ("abc/evil/pwned", b"x")],
         "Invalid R package: member 'abc/evil/pwned' is below the symlink 'abc/evil'"),
    ],
)  # fmt: skip
def test_curl_shows_why_an_r_package_with_a_way_out_is_refused(
    live_server, token, tmp_path, members, message
):
    path = tmp_path / "abc_2.1.tar.gz"
    path.write_bytes(tar_bytes([("abc/DESCRIPTION", R_DESCRIPTION), *members]))
    before = kept(live_server)

    assert curl_upload(f"{live_server.url}/api/repo/dev", path, token) == (400, message)
    assert kept(live_server) == before and before[2] == []


def test_r_package_with_a_symlink_inside_unpacks_inside_with_rs_untar(live_server, token, tmp_path):
    path = tmp_path / "abc_2.2.tar.gz"
    path.write_bytes(tar_bytes([("abc/DESCRIPTION", R_DESCRIPTION.replace(b"2.1", b"2.2")),
                                ("abc/R/abc.R", b"f <- 1\n"),
                                ("abc/inst/abc.R", "../R/abc.R")]))  # fmt: skip
    assert curl_upload(f"{live_server.url}/api/repo/dev", path, token)[0] == 200
    served = tmp_path / "served" / path.name
    served.parent.mkdir()
    url = f"{live_server.url}/api/repo/dev/cran/src/contrib/{path.name}"
    with urllib.request.urlopen(
        urllib.request.Request(url, headers={"X-Auth": token}), timeout=10
    ) as response:
        served.write_bytes(response.read())
    assert served.read_bytes() == path.read_bytes()
    exdir = tmp_path / "exdir"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}

    untar = rscript(f'untar("{served}", exdir = "{exdir}", tar = "internal")', env)

    assert untar.returncode == 0, untar.stdout + untar.stderr
    assert os.readlink(exdir / "abc" / "inst" / "abc.R") == "../R/abc.R"
    assert (exdir / "abc" / "inst" / "abc.R").read_bytes() == b"f <- 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, "exdir", "served"]
