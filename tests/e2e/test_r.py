"""R channels end to end: packages built with `R CMD build` during the test, uploaded with
curl, installed with real R through both token-in-path forms, Basic auth and anonymously."""

from __future__ import annotations

import gzip
import json
import tarfile
import urllib.error
import urllib.request
import zipfile
from types import SimpleNamespace

import pytest

from .live import r_build, rscript, run, tool


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return r_build(tmp_path_factory.mktemp("rbuild"))


@pytest.fixture(scope="module")
def team(live_server):
    s = live_server
    s.cli("user", "create", "alice", "--password", "alice-password")
    s.cli("user", "create", "bob", "--password", "bob-password")
    s.cli("channel", "create", "rdev", "--owner", "alice")
    s.cli("channel", "create", "rpub", "--owner", "alice", "--public")
    revoked = s.cli("token", "create", "alice", "--label", "revoke-me")
    tokens = json.loads(s.cli("token", "list", "alice", "--json"))
    s.cli("token", "revoke", str(next(t["id"] for t in tokens if t["label"] == "revoke-me")))
    return SimpleNamespace(
        owner=s.cli("token", "create", "alice", "--label", "owner"),
        write=s.cli("token", "create", "alice", "--channel", "rdev", "--scope", "write"),
        read=s.cli(
            "token", "create", "alice", "--channel", "rdev", "--scope", "read", "--expires-in", "1d"
        ),  # fmt: skip
        bob=s.cli("token", "create", "bob"),
        revoked=revoked,
    )


def curl_upload(url: str, path, filetype: str, *extra: str, headers: dict | None = None):
    args = [tool("curl"), "-sS", "-w", "\n%{http_code}", "-F", f"filetype={filetype}",
            "-F", f"content=@{path}", *extra, url]  # fmt: skip
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    result = run(args, {"PATH": "/usr/bin:/bin"})
    body, _, status = result.stdout.rpartition("\n")
    return int(status), body.strip()


@pytest.fixture(scope="module")
def uploaded(live_server, team, built):
    """abc 2.0 then 2.1, abcuser and abcc into rdev (X-Auth, Basic and a path token), and
    abc 2.1 into the public rpub."""
    url = f"{live_server.url}/api/repo/rdev"
    source = "cran_source_package"
    results = [
        curl_upload(url, built["abc_2.0.tar.gz"], source, headers={"X-Auth": team.write}),
        curl_upload(url, built["abc_2.1.tar.gz"], source, "-u", f"{team.write}:x-auth-token"),
        curl_upload(f"{live_server.url}/api/repo/t/{team.write}/rdev/", built["abcuser_1.0.tar.gz"],
                    source),  # fmt: skip
        curl_upload(f"{live_server.url}/api/t/{team.write}/repo/rdev", built["abcc_0.1-1.tar.gz"],
                    source),  # fmt: skip
        curl_upload(f"{live_server.url}/api/repo/rpub", built["abc_2.1.tar.gz"], source,
                    headers={"X-Auth": team.owner}),
    ]  # fmt: skip
    assert [status for status, _ in results] == [200] * 5, results
    return results


def r_env(tmp_path) -> dict[str, str]:
    lib = tmp_path / "lib"
    lib.mkdir(exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "R_LIBS_USER": str(lib),
            "TMPDIR": str(tmp_path), "LANG": "C.UTF-8"}  # fmt: skip


def install_and_call(repos: str, package: str, call: str, tmp_path) -> tuple[int, str]:
    """install.packages() into a fresh library, then print `call`; exit 3 if not installed."""
    code = f"""
        lib <- Sys.getenv("R_LIBS_USER")
        install.packages("{package}", repos = "{repos}", lib = lib, quiet = TRUE)
        if (!requireNamespace("{package}", lib.loc = lib, quietly = TRUE)) quit(status = 3)
        .libPaths(c(lib, .libPaths()))
        cat("RESULT:", {call}, "\\n")
    """
    result = rscript(code, r_env(tmp_path))
    return result.returncode, result.stdout + result.stderr


def repos_urls(server, token: str, channel: str = "rdev") -> dict[str, str]:
    return {
        "repo-t": f"{server.url}/api/repo/t/{token}/{channel}/cran",
        "t-repo": f"{server.url}/api/t/{token}/repo/{channel}/cran/",
        "basic": f"http://{token}:x-auth-token@{server.host}/api/repo/{channel}/cran",
    }


@pytest.mark.parametrize("form", ["repo-t", "t-repo", "basic"])
def test_install_newest_version_with_its_dependency(live_server, team, uploaded, tmp_path, form):
    repos = repos_urls(live_server, team.read)[form]
    status, output = install_and_call(repos, "abcuser", "abcuser::abcuser_hello()", tmp_path)
    assert status == 0, output
    assert "RESULT: abc is 2.1" in output


def test_compiled_package_installs_from_source(live_server, team, uploaded, tmp_path):
    repos = repos_urls(live_server, team.read)["repo-t"]
    status, output = install_and_call(repos, "abcc", "abcc::abcc_twice(1:3)", tmp_path)
    assert status == 0, output
    assert "RESULT: 2 4 6" in output


def test_available_packages_lists_the_uploads(live_server, team, uploaded, tmp_path):
    repos = repos_urls(live_server, team.read)["t-repo"]
    code = f"""
        ap <- available.packages(repos = "{repos}")
        cat(paste(ap[, "Package"], ap[, "Version"], ap[, "NeedsCompilation"]), sep = "\\n")
    """
    result = rscript(code, r_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["abc 2.1 no", "abcc 0.1-1 yes", "abcuser 1.0 no"]


def test_older_version_installs_from_the_archive(live_server, team, uploaded, tmp_path):
    repos = repos_urls(live_server, team.read)["repo-t"]
    code = f"""
        lib <- Sys.getenv("R_LIBS_USER")
        install.packages("{repos}/src/contrib/Archive/abc/abc_2.0.tar.gz", repos = NULL,
                         type = "source", lib = lib, quiet = TRUE)
        cat("ARCHIVE:", abc::abc_version(), "\\n")
        remove.packages("abc", lib = lib)
        remotes::install_version("abc", "2.0", repos = "{repos}", lib = lib, quiet = TRUE,
                                 upgrade = "never")
        cat("REMOTES:", abc::abc_version(), "\\n")
    """
    result = rscript(code, r_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ARCHIVE: 2.0" in result.stdout and "REMOTES: 2.0" in result.stdout


@pytest.mark.parametrize("which", ["wrong", "revoked", "other-user"])
def test_bad_token_fails_clearly(live_server, team, uploaded, tmp_path, which):
    token = {"wrong": "rp-" + "C" * 49, "revoked": team.revoked, "other-user": team.bob}[which]
    repos = repos_urls(live_server, token)["repo-t"]
    status, output = install_and_call(repos, "abc", "abc::abc_version()", tmp_path)
    assert status == 3, output
    assert "unable to access index for repository" in output
    assert "is not available" in output


def test_public_channel_installs_without_a_token(live_server, uploaded, tmp_path):
    repos = f"{live_server.url}/api/repo/rpub/cran"
    status, output = install_and_call(repos, "abc", "abc::abc_version()", tmp_path)
    assert status == 0, output
    assert "RESULT: 2.1" in output


def get(url: str, **headers: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_reupload_identical_is_ok_and_other_content_is_409(live_server, team, uploaded, built,
                                                          tmp_path):  # fmt: skip
    url = f"{live_server.url}/api/repo/rdev"
    auth = {"X-Auth": team.write}
    assert curl_upload(url, built["abc_2.1.tar.gz"], "cran_source_package", headers=auth) == (
        200, "File already exists (identical content)")  # fmt: skip
    other = tmp_path / "abc_2.1.tar.gz"
    other.write_bytes(gzip.compress(gzip.decompress(built["abc_2.1.tar.gz"].read_bytes()),
                                    mtime=1))  # fmt: skip
    status, body = curl_upload(url, other, "cran_source_package", headers=auth)
    assert status == 409 and body.startswith("File already exists"), body


def test_index_files_agree_and_revalidate(live_server, team, uploaded):
    base = f"{live_server.url}/api/repo/t/{team.read}/rdev/cran/src/contrib"
    status, headers, plain = get(f"{base}/PACKAGES")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    _, gz_headers, packed = get(f"{base}/PACKAGES.gz")
    assert gzip.decompress(packed) == plain
    assert "Content-Encoding" not in gz_headers
    assert b"Package: abc\nVersion: 2.1\n" in plain and b"Version: 2.0" not in plain
    assert get(f"{base}/PACKAGES", **{"If-None-Match": headers["ETag"]})[0] == 304
    assert get(f"{base}/Meta/archive.rds")[0] == 200


def test_yank_changes_the_index_at_once(live_server, team, uploaded):
    base = f"{live_server.url}/api/repo/t/{team.read}/rdev/cran/src/contrib"
    _, before, _ = get(f"{base}/PACKAGES")
    live_server.cli("yank", "rdev", "abc_2.1.tar.gz", "--reason", "test")
    try:
        status, after, body = get(f"{base}/PACKAGES", **{"If-None-Match": before["ETag"]})
        assert status == 200 and after["ETag"] != before["ETag"]
        assert b"Package: abc\nVersion: 2.0\n" in body
    finally:
        live_server.cli("unyank", "rdev", "abc_2.1.tar.gz")
    assert b"Version: 2.1" in get(f"{base}/PACKAGES")[2]


def repack_as_windows_zip(linux_binary, out):
    """The installed package of a Linux binary, zipped as a Windows binary would be."""
    with tarfile.open(linux_binary) as tar, zipfile.ZipFile(out, "w") as zipped:
        for member in tar.getmembers():
            if member.isfile():
                data = tar.extractfile(member).read()
                if member.name.endswith("/DESCRIPTION"):
                    data = data.replace(b"; unix\n", b"; windows\n")
                zipped.writestr(member.name, data)
    return out


def test_binaries_are_placed_for_their_platform(live_server, team, uploaded, built, tmp_path):
    url = f"{live_server.url}/api/repo/rdev"
    auth = {"X-Auth": team.write}
    binary = "cran_binary_package"
    linux_abc = built["abc_2.1_R_x86_64-pc-linux-gnu.tar.gz"]
    windows = repack_as_windows_zip(linux_abc, tmp_path / "abc_2.1.zip")
    mac = tmp_path / "abc_2.1.tgz"
    mac.write_bytes(linux_abc.read_bytes())
    assert curl_upload(url, windows, binary, headers=auth)[0] == 200
    status, body = curl_upload(url, mac, binary, headers=auth)
    assert status == 400 and "platform" in body, body
    assert curl_upload(url, mac, binary, "-F", "platform=big-sur-arm64", headers=auth)[0] == 200
    repos = repos_urls(live_server, team.read)["repo-t"]
    code = f"""
        for (type in c("win.binary", "mac.binary.big-sur-arm64")) {{
          ap <- available.packages(contriburl = contrib.url("{repos}", type))
          cat(type, contrib.url("", type), paste(ap[, "Package"], ap[, "Version"]), "\\n")
        }}
    """
    result = rscript(code, r_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "win.binary /bin/windows/contrib/4.2 abc 2.1" in result.stdout
    assert "mac.binary.big-sur-arm64 /bin/macosx/big-sur-arm64/contrib/4.2 abc 2.1" in (
        result.stdout
    )
    source_index = get(f"{repos}/src/contrib/PACKAGES")[2]
    assert source_index.count(b"Package: abc\n") == 1


def test_linux_binary_needs_a_build_and_stays_out_of_src(live_server, team, uploaded, built):
    url = f"{live_server.url}/api/repo/rdev"
    auth = {"X-Auth": team.write}
    linux = built["abcc_0.1-1_R_x86_64-pc-linux-gnu.tar.gz"]
    status, body = curl_upload(url, linux, "cran_binary_package", headers=auth)
    assert status == 400 and "platform" in body, body
    status, body = curl_upload(url, linux, "cran_binary_package", "-F",
                               "platform=noble-x86_64", headers=auth)  # fmt: skip
    assert status == 200, body
    repos = repos_urls(live_server, team.read)["repo-t"]
    index = get(f"{repos}/bin/linux/noble-x86_64/contrib/4.2/PACKAGES")[2].decode()
    assert "Package: abcc\n" in index
    assert "File: abcc_0.1-1_R_x86_64-pc-linux-gnu.tar.gz" in index
    assert b"x86_64-pc-linux-gnu" not in get(f"{repos}/src/contrib/PACKAGES")[2]


@pytest.mark.parametrize("name", ["PACKAGES", "PACKAGES.gz", "PACKAGES.rds"])
def test_empty_binary_tree_answers_an_empty_index(live_server, team, uploaded, name, tmp_path):
    repos = repos_urls(live_server, team.read)["repo-t"]
    status, _, body = get(f"{repos}/bin/windows/contrib/4.9/{name}")
    assert status == 200
    if name == "PACKAGES":
        assert body == b""
    if name == "PACKAGES.gz":
        assert gzip.decompress(body) == b""
    if name == "PACKAGES.rds":
        code = f'x <- readRDS(gzcon(url("{repos}/bin/windows/contrib/4.9/PACKAGES.rds")));' \
               'cat("ROWS", nrow(x), "\\n")'  # fmt: skip
        result = rscript(code, r_env(tmp_path))
        assert "ROWS 0" in result.stdout, result.stdout + result.stderr


def test_rds_index_reads_over_http(live_server, team, uploaded, tmp_path):
    repos = repos_urls(live_server, team.read)["repo-t"]
    code = f"""
        x <- readRDS(gzcon(url("{repos}/src/contrib/PACKAGES.rds")))
        cat("RDS", rownames(x), "\\n")
    """
    result = rscript(code, r_env(tmp_path))
    assert "RDS abc abcc abcuser" in result.stdout, result.stdout + result.stderr


def test_tokens_never_reach_the_log(live_server, team, uploaded):
    log = live_server.log()
    for token in (team.write, team.read, team.bob, team.revoked):
        assert token not in log


def test_packages_is_what_write_packages_writes(live_server, team, uploaded, built, tmp_path):
    sources = tmp_path / "contrib"
    sources.mkdir()
    for name in ("abc_2.0.tar.gz", "abc_2.1.tar.gz", "abcuser_1.0.tar.gz", "abcc_0.1-1.tar.gz"):
        (sources / name).write_bytes(built[name].read_bytes())
    result = rscript(f'tools::write_PACKAGES("{sources}", type = "source")', r_env(tmp_path))
    assert result.returncode == 0, result.stderr
    repos = repos_urls(live_server, team.read)["repo-t"]
    assert get(f"{repos}/src/contrib/PACKAGES")[2] == (sources / "PACKAGES").read_bytes()
