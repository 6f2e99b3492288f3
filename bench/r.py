"""The R side: a channel at CRAN's size loaded through repo's own Python API (20,000 uploads
over HTTP would take most of the run), then the time for a curl upload to show up in
PACKAGES, the index files' request rate and R's own `available.packages()`."""

from __future__ import annotations

import hashlib
import shutil
import statistics
import subprocess
import time
import urllib.error
from pathlib import Path

from repo import accounts, create_app, files
from repo.cran.description import parse_dcf
from repo.db import get_db

from . import measure
from .corpus import targz
from .report import Results
from .scale import Scale
from .servers import USER, NginxServer, RepoServer, Service, tool

CONTRIB = "src/contrib"
POLL = 0.01
VISIBLE_DEADLINE = 120


def description(index: int, version: str = "1.0") -> bytes:
    """A DESCRIPTION like a typical CRAN package's: a few imports of earlier packages."""
    name = package_name(index)
    imports = ", ".join(package_name(i) for i in range(max(0, index - 3), index))
    return (
        f"Package: {name}\nType: Package\nVersion: {version}\n"
        f"Title: Synthetic Package {index} of the Benchmark\n"
        f"Description: A synthetic R package, one of a channel at CRAN's size, used to\n"
        f"    measure how repo builds and serves the PACKAGES index.\n"
        f"Authors@R: person('Bench', 'Mark', email = 'bench@example.org', role = c('aut', 'cre'))\n"
        f"License: MIT + file LICENSE\nDepends: R (>= 3.5.0)\n"
        + (f"Imports: {imports}\n" if imports else "")
        + "Suggests: testthat (>= 3.0.0)\nEncoding: UTF-8\nNeedsCompilation: no\n"
        "Packaged: 2024-01-01 00:00:00 UTC; bench\n"
    ).encode()


def package_name(index: int) -> str:
    return f"rsynth{index:05d}"


def tarball(index: int, version: str = "1.0") -> bytes:
    """A source package as `R CMD build` lays it out (DESCRIPTION, NAMESPACE, R/)."""
    name = package_name(index)
    members = {
        f"{name}/DESCRIPTION": description(index, version),
        f"{name}/NAMESPACE": b"export(hello)\n",
        f"{name}/R/hello.R": f"hello <- function() '{name}'\n".encode(),
        f"{name}/LICENSE": b"YEAR: 2024\nCOPYRIGHT HOLDER: bench\n",
    }
    return targz(members)


def load(server: RepoServer, count: int) -> float:
    """Publish `count` packages into the R channel through repo's API, as an upload would
    (blob committed, then the row); seconds."""
    started = time.monotonic()
    app = create_app({"DATA_DIR": str(server.data_dir)})
    with app.app_context():
        db = get_db()
        channel_id = accounts.find_channel(db, server.r_channel)["id"]
        user_id = accounts.get_user(db, USER)["id"]
        blobs = app.extensions["blobs"]
        for index in range(count):
            data = tarball(index)
            fields = parse_dcf(description(index))
            name = fields["Package"]
            version = fields["Version"]
            with blobs.holding(data) as pending:
                new = files.NewFile(
                    kind="cran", name=name, display_name=name, version=version,
                    filename=f"{name}_{version}.tar.gz", sha256=pending.sha256,
                    size=len(data), subdir=CONTRIB,
                    metadata={**fields, "MD5sum": hashlib.md5(data).hexdigest()},
                )  # fmt: skip
                files.publish(db, channel_id, new, user_id, [pending])
    return time.monotonic() - started


def index_url(server: Service, name: str) -> str:
    return server.url + _contrib_path(server) + name


def cold_build_ms(server: RepoServer) -> float:
    """The first PACKAGES.gz request after the load, which builds the index set."""
    started = time.monotonic()
    measure.fetch(index_url(server, "PACKAGES.gz"), server.authorization)
    return (time.monotonic() - started) * 1000


def visible_after(server: RepoServer, index: int, workdir: Path) -> float:
    """Upload one new package with curl, then poll PACKAGES until it is listed; seconds from
    the start of the upload."""
    name = package_name(index)
    path = workdir / f"{name}_1.0.tar.gz"
    path.write_bytes(tarball(index))
    started = time.monotonic()
    args = ["curl", "--silent", "--show-error", "--fail", "--output", "/dev/null"]
    args += ["-H", f"Authorization: {server.authorization}", "-F", "filetype=cran_source_package"]
    args += ["-F", f"content=@{path}", f"{server.url}/api/repo/{server.r_channel}"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=VISIBLE_DEADLINE)
    if result.returncode != 0:
        raise RuntimeError(f"curl upload: {result.stderr.strip()}")
    wanted = f"Package: {name}\n".encode()
    while time.monotonic() - started < VISIBLE_DEADLINE:
        try:
            if wanted in measure.fetch(index_url(server, "PACKAGES"), server.authorization):
                return time.monotonic() - started
        except urllib.error.HTTPError:
            pass
        time.sleep(POLL)
    raise RuntimeError(f"{name} not in PACKAGES after {VISIBLE_DEADLINE} s")


def available_packages(repos: str, expected: int) -> float:
    """Seconds R's available.packages() takes on a fresh session; checks the row count."""
    if shutil.which("Rscript") is None:
        raise RuntimeError("Rscript not installed")
    code = (
        f'options(repos = c(bench = "{repos}")); '
        't <- system.time(a <- available.packages(type = "source")); '
        'cat(nrow(a), t[["elapsed"]], "\\n")'
    )
    result = subprocess.run(
        [tool("Rscript"), "--vanilla", "-e", code], capture_output=True, text=True, timeout=300
    )
    words = result.stdout.split()
    if result.returncode != 0 or len(words) != 2:
        raise RuntimeError(f"Rscript: {(result.stdout + result.stderr).strip()[-200:]}")
    if int(words[0]) < expected:
        raise RuntimeError(f"available.packages() saw {words[0]} of {expected} packages")
    return float(words[1])


def prepare(server: RepoServer, scale: Scale, results: Results, workdir: Path) -> bool:
    """Load the channel, then time the first index build and an upload until it is listed;
    False when the channel could not be loaded."""
    name, count = server.name, scale.r_packages
    if not results.attempt(name, ("r_load",), lambda: load(server, count)):
        return False
    results.attempt(name, ("r_cold",), lambda: cold_build_ms(server))

    def visible() -> float:
        runs = [visible_after(server, count + i, workdir) for i in range(scale.r_visible)]
        return statistics.median(runs)

    results.attempt(name, ("r_visible",), visible)
    return True


def copy_index(repo: RepoServer, nginx: NginxServer) -> None:
    """Put repo's index files into nginx's tree, so both serve the very same bytes."""
    target = nginx.tree / "cran" / CONTRIB
    target.mkdir(parents=True, exist_ok=True)
    for name in ("PACKAGES", "PACKAGES.gz", "PACKAGES.rds"):
        (target / name).write_bytes(measure.fetch(index_url(repo, name), repo.authorization))


def _contrib_path(server: Service) -> str:
    if isinstance(server, RepoServer):
        return f"/api/repo/{server.r_channel}/cran/{CONTRIB}/"
    return f"/cran/{CONTRIB}/"


def _repos(server: Service) -> str:
    """The repos URL R is given: repo's token-in-path form (R sends no headers of its own,
    as the README tells users), or nginx's with Basic credentials in it."""
    if isinstance(server, RepoServer):
        return f"{server.url}/api/repo/t/{server.password}/{server.r_channel}/cran"
    return server.url.replace("http://", f"http://{server.user}:{server.password}@") + "/cran"


def reads(servers: list[Service], scale: Scale, results: Results, workdir: Path) -> None:
    """Request rates of PACKAGES.rds and PACKAGES.gz under load, the .gz latency on one
    connection (a file served from a cache answers in well under the time to build it), and
    R's available.packages(); alternating between the servers."""
    runs = (
        ("r_rds_rps", "PACKAGES.rds", 16, scale.wrk_seconds, "rps"),
        ("r_gz_rps", "PACKAGES.gz", 16, scale.wrk_seconds, "rps"),
        ("r_gz_p50", "PACKAGES.gz", 1, scale.latency_seconds, "p50"),
    )
    for key, index, connections, seconds, figure in runs:

        def run(server: Service, index=index, connections=connections, seconds=seconds,
                figure=figure) -> float:  # fmt: skip
            log = workdir / f"wrk-{server.name}-{index}-{connections}.txt"
            path = _contrib_path(server) + index
            return getattr(measure.wrk(server, [path], connections, seconds, log), figure)

        results.alternate(servers, (key,), 1, run)
    count = scale.r_packages
    results.alternate(servers, ("r_available",), scale.installs,
                      lambda server: available_packages(_repos(server), count))  # fmt: skip
