"""A channel's R indexes against R's own, for real packages: sources built with `R CMD build`
from tests/fixtures/r-index (long and multi-line fields, Authors@R, latin1 and UTF-8 names,
OS_type, Priority, License_restricts_use, a Path field), binaries made with
`R CMD INSTALL --build`, all uploaded to a live server. Every tree's PACKAGES, PACKAGES.gz and
PACKAGES.rds are compared with what `tools::write_PACKAGES` writes for the very same files,
Meta/archive.rds is read with `tools:::CRAN_archive_db()`, and `remotes::install_version`
installs archived versions. R talks only to 127.0.0.1: every other host goes to a dead proxy."""

from __future__ import annotations

import gzip
import io
import json
import re
import shutil
import tarfile
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from .live import R_TIMEOUT, rscript, run, tool
from .test_r import curl_upload, get, r_env

FIXTURES = Path(__file__).parents[1] / "fixtures" / "r-index"
# wrapped's archive: uploaded out of order, and 1.10 > 1.9 although "1.10" < "1.9" as text.
WRAPPED = ["2.0", "0.9", "1.10", "1.9"]
BINARY_VERSIONS = ["1.10", "2.0"]  # the older one must stay out of the binary indexes too
OTHERS = ["latin_0.3-2", "compiled_2.0-1"]
LINUX = "R_x86_64-pc-linux-gnu"
# Built: R 4.2.2; x86_64-pc-linux-gnu; 2026-11-23 22:54:28 UTC; unix (platform empty without src/)
BUILT = re.compile(rb"^Built: (R [^;]*); ([^;]*);([^;]*); unix$", re.M)
# R 4.2.2 has no type for Linux binaries (R 4.6 calls them "other.binary"): this is
# write_PACKAGES' own body with the tarballs of a mac.binary (untar, MD5sum, no
# NeedsCompilation) and addFiles = TRUE, as their names are not <pkg>_<ver>.tar.gz.
LINUX_INDEX = """
files <- list.files(dir, "_.*[.]tar[.]gz$", full.names = TRUE)
db <- tools:::.process_package_files_for_repository_db(files, "mac.binary", "Built", FALSE)
db <- tools:::.process_repository_package_db_to_matrix(db, "", TRUE, FALSE, TRUE)
tools:::.write_repository_package_db(db, dir, "xz")
"""
# Each tree: the channel that holds it, its contrib directory, and the R code that indexes a
# copy of its files in `dir` the way CRAN does.
TREES = {
    "src": ("rindex", "src/contrib", 'write_PACKAGES(dir, type = "source")'),
    # latin as .tar.xz: R needs a File field for it, and addFiles = TRUE gives every row one.
    "mixed": ("rmixed", "src/contrib", 'write_PACKAGES(dir, type = "source", addFiles = TRUE)'),
    "windows": ("rindex", "bin/windows/contrib/{minor}",
                'write_PACKAGES(dir, type = "win.binary", fields = "Built")'),
    "macos": ("rindex", "bin/macosx/big-sur-arm64/contrib/{minor}",
              'write_PACKAGES(dir, type = "mac.binary", fields = "Built")'),
    "linux": ("rindex", "bin/linux/noble-x86_64/contrib/{minor}", LINUX_INDEX),
}  # fmt: skip
# How the files of a binary tree are made from the Linux binaries: the platform of compiled
# code (None: the Linux binary itself), the OS type, the DESCRIPTION lines that OS's R adds,
# the file name.
BINARIES = {
    "windows": ("x86_64-w64-mingw32", "windows", b"Archs: x64\n", "{stem}.zip"),
    "macos": ("aarch64-apple-darwin20", "unix", b"", "{stem}.tgz"),
    "linux": (None, "unix", b"", f"{{stem}}_{LINUX}.tar.gz"),
}
PLATFORM_FIELD = {"macos": "big-sur-arm64", "linux": "noble-x86_64"}  # for pure-R binaries


def r_command(args: list[str], cwd: Path) -> None:
    result = run([tool("R"), "CMD", *args], {"PATH": "/usr/bin:/bin", "HOME": str(cwd),
                 "LANG": "C.UTF-8"}, R_TIMEOUT, cwd=cwd)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def repack(linux_binary: Path, out: Path, platform: str, ostype: str, extra: bytes) -> Path:
    """The installed package of a Linux binary as another OS's binary would hold it: if it has
    compiled code, Built names `platform` and the `extra` lines follow; Built names `ostype`.
    A zip or a gzip'ed tar, by the name of `out`."""
    with tarfile.open(linux_binary) as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else b"") for m in tar]
    files = []
    for member, data in members:
        if member.name.count("/") == 1 and member.name.endswith("/DESCRIPTION"):
            built = BUILT.search(data)
            own = platform.encode() if built[2] else b""
            data = data.replace(built[0], b"Built: %s; %s;%s; %s" % (
                built[1], own, built[3], ostype.encode())) + (extra if own else b"")  # fmt: skip
            member.size = len(data)
        files.append((member, data))
    if out.suffix == ".zip":
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zipped:
            for member, data in files:
                if member.isfile():
                    zipped.writestr(member.name, data)
    else:
        with tarfile.open(out, "w:gz") as tar:
            for member, data in files:
                tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return out


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> SimpleNamespace:
    """Every file of every tree, by tree, built once: wrapped in each version of WRAPPED (its
    fixture with Version rewritten), latin and compiled as they are, latin also as .tar.xz."""
    work = tmp_path_factory.mktemp("r-index")
    for version in WRAPPED:
        source = work / f"wrapped-{version}"
        shutil.copytree(FIXTURES / "wrapped", source)
        text = (source / "DESCRIPTION").read_text(encoding="utf-8")
        text = text.replace("Version: 1.10\n", f"Version: {version}\n")
        (source / "DESCRIPTION").write_text(text, encoding="utf-8")
        r_command(["build", "--no-manual", "--no-build-vignettes", str(source)], work)
    for name, *compression in [("latin",), ("latin", "--compression=xz"), ("compiled",)]:
        r_command(["build", "--no-manual", "--no-build-vignettes", *compression,
                   str(FIXTURES / name)], work)  # fmt: skip
    stems = [f"wrapped_{v}" for v in BINARY_VERSIONS] + OTHERS
    (work / "lib").mkdir()
    for stem in stems:
        r_command(["INSTALL", "--build", "-l", "lib", f"{stem}.tar.gz"], work)
    built = BUILT.search(tarfile.open(work / f"{stems[0]}_{LINUX}.tar.gz").extractfile(
        "wrapped/DESCRIPTION").read())  # fmt: skip
    minor = ".".join(built[1].decode().removeprefix("R ").split(".")[:2])
    wrapped = [work / f"wrapped_{v}.tar.gz" for v in WRAPPED]
    trees = {
        "src": wrapped + [work / f"{stem}.tar.gz" for stem in OTHERS],
        "mixed": [*wrapped, work / "latin_0.3-2.tar.xz", work / "compiled_2.0-1.tar.gz"],
    }
    for tree, (platform, ostype, extra, name) in BINARIES.items():
        trees[tree] = []
        for stem in stems:
            linux = work / f"{stem}_{LINUX}.tar.gz"
            out = work / tree / name.format(stem=stem)
            out.parent.mkdir(exist_ok=True)
            trees[tree].append(shutil.copy(linux, out) if platform is None
                               else repack(linux, out, platform, ostype, extra))  # fmt: skip
    return SimpleNamespace(minor=minor, trees=trees)


@pytest.fixture(scope="module")
def channel(live_server, packages) -> SimpleNamespace:
    """Public channels holding every file of `packages`, uploaded with curl; `served` is the
    name the server gave each file (from its answer): R's index of the same files must use it."""
    s = live_server
    s.cli("user", "create", "rix", "--password", "rix-password")
    for name in {owner for owner, _, _ in TREES.values()}:
        s.cli("channel", "create", name, "--owner", "rix", "--public")
    token = s.cli("token", "create", "rix")
    started, served = time.time(), {}
    for tree, paths in packages.trees.items():
        kind = "cran_binary_package" if tree in BINARIES else "cran_source_package"
        platform = PLATFORM_FIELD.get(tree)
        extra = ["-F", f"platform={platform}"] if platform else []
        for path in paths:
            status, body = curl_upload(f"{s.url}/api/repo/{TREES[tree][0]}", path, kind, *extra,
                                       headers={"X-Auth": token})  # fmt: skip
            assert status == 200, body
            served[path] = re.fullmatch(r"Uploaded (\S+) to channel .*", body)[1]
    return SimpleNamespace(url=s.url, repos=f"{s.url}/api/repo/rindex/cran", served=served,
                           started=int(started), uploaded=int(time.time()) + 1)  # fmt: skip


def index_url(channel: SimpleNamespace, tree: str, minor: str, name: str) -> str:
    owner, contrib, _ = TREES[tree]
    return f"{channel.url}/api/repo/{owner}/cran/{contrib.format(minor=minor)}/{name}"


@pytest.fixture(scope="module")
def compared(channel, packages, tmp_path_factory) -> dict[str, str]:
    """Our three index files of each tree next to what write_PACKAGES writes for the same files,
    and what R says of the two .rds files: key=value lines from one Rscript run."""
    root = tmp_path_factory.mktemp("compared")
    lines = ["library(tools)", "root <- commandArgs(trailingOnly = TRUE)[[1]]"]
    for tree, paths in packages.trees.items():
        (root / tree / "ours").mkdir(parents=True)
        for path in paths:
            shutil.copy(path, root / tree / channel.served[path])
        for name in ("PACKAGES", "PACKAGES.gz", "PACKAGES.rds"):
            status, _, body = get(index_url(channel, tree, packages.minor, name))
            assert status == 200, (tree, name, status)
            (root / tree / "ours" / name).write_bytes(body)
        lines += [
            f'dir <- file.path(root, "{tree}")',
            TREES[tree][2],
            f'cat("{tree}=", identical(readRDS(file.path(dir, "ours", "PACKAGES.rds")),'
            ' readRDS(file.path(dir, "PACKAGES.rds"))), "\\n", sep = "")',
        ]
    script = root / "compare.R"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run([tool("Rscript"), "--vanilla", str(script), str(root)],
                 r_env(root), R_TIMEOUT)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    said = dict(line.split("=", 1) for line in result.stdout.splitlines())
    return {**said, "root": str(root)}


@pytest.mark.parametrize("tree", TREES)
def test_packages_is_byte_identical_to_write_packages(compared, tree):
    directory = Path(compared["root"]) / tree
    theirs = (directory / "PACKAGES").read_bytes()
    assert (directory / "ours" / "PACKAGES").read_bytes().decode() == theirs.decode()
    assert b"\n        " in theirs  # R wrapped a field, so the test covers folding


@pytest.mark.parametrize("tree", TREES)
def test_packages_gz_decompresses_to_what_write_packages_writes(compared, tree):
    directory = Path(compared["root"]) / tree
    ours = gzip.decompress((directory / "ours" / "PACKAGES.gz").read_bytes())
    assert ours == gzip.decompress((directory / "PACKAGES.gz").read_bytes())
    assert ours == (directory / "PACKAGES").read_bytes()


@pytest.mark.parametrize("tree", TREES)
def test_packages_rds_is_identical_in_r(compared, tree):
    assert compared[tree] == "TRUE"


def test_the_index_names_no_path_or_file_a_description_carries(compared):
    for tree in TREES:
        assert (
            b"elsewhere" not in (Path(compared["root"]) / tree / "ours" / "PACKAGES").read_bytes()
        )


def r_offline_env(tmp_path: Path) -> dict[str, str]:
    """r_env, with every host but 127.0.0.1 sent to a proxy that is not there."""
    dead = "http://127.0.0.1:9"
    return {**r_env(tmp_path), "http_proxy": dead, "https_proxy": dead, "ftp_proxy": dead,
            "no_proxy": "127.0.0.1"}  # fmt: skip


ARCHIVE_SCRIPT = r"""
out <- function(key, value) cat(key, "=", paste(value, collapse = "|"), "\n", sep = "")
args <- commandArgs(trailingOnly = TRUE)
a <- tools:::CRAN_archive_db()  # gzcon(url("<R_CRAN_SRC>/src/contrib/Meta/archive.rds"))
out("names", names(a))
w <- a$wrapped
out("rows", row.names(w))
local <- file.path(args[[1]], sub("^wrapped/", "", row.names(w)))
info <- file.info(local)
out("columns", identical(names(w), names(info)))
out("classes", identical(lapply(w, class), lapply(info, class)) &&
               identical(lapply(w, typeof), lapply(info, typeof)))
out("size", identical(w$size, info$size))
out("isdir", identical(w$isdir, info$isdir))
out("mode", format(w$mode))
window <- as.numeric(args[2:3])
out("mtime", all(as.numeric(w$mtime) >= window[1] & as.numeric(w$mtime) <= window[2]))
"""


def test_archive_rds_has_cran_s_shape_and_every_older_version(channel, packages, tmp_path):
    source = packages.trees["src"][0].parent
    script = tmp_path / "archive.R"
    script.write_text(ARCHIVE_SCRIPT, encoding="utf-8")
    env = {**r_offline_env(tmp_path), "R_CRAN_SRC": channel.repos}
    result = run([tool("Rscript"), "--vanilla", str(script), str(source), str(channel.started),
                  str(channel.uploaded)], env, R_TIMEOUT)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    said = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert said["names"] == "wrapped"
    assert said["rows"] == "wrapped/wrapped_0.9.tar.gz|wrapped/wrapped_1.9.tar.gz|" \
                           "wrapped/wrapped_1.10.tar.gz"  # fmt: skip
    assert said["columns"] == said["classes"] == said["size"] == said["isdir"] == "TRUE"
    assert said["mode"] == "644|644|644"
    assert said["mtime"] == "TRUE"


@pytest.mark.parametrize(("spec", "installed"), [("1.9", "1.9"), ("< 2.0", "1.10"),
                                                 ("0.9", "0.9")])  # fmt: skip
def test_install_version_installs_an_archived_version(live_server, channel, tmp_path, spec,
                                                      installed):  # fmt: skip
    code = f"""
        lib <- Sys.getenv("R_LIBS_USER")
        remotes::install_version("wrapped", {json.dumps(spec)}, repos = "{channel.repos}",
                                 lib = lib, quiet = TRUE, upgrade = "never")
        .libPaths(c(lib, .libPaths()))
        cat("INSTALLED:", wrapped::wrapped_version(), "\\n")
    """
    result = rscript(code, r_offline_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"INSTALLED: {installed} \n" in result.stdout
    archived = f"/cran/src/contrib/Archive/wrapped/wrapped_{installed}.tar.gz"
    assert archived in live_server.log()
