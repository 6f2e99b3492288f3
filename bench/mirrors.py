"""Mirrors of one local upstream (issue 11): repo's mirror channel, a devpi-server mirror index
and proxpi, each fed by the same static PEP 503 tree that an nginx without credentials serves.

They all run at once and take turns (`Results.alternate`), so that every figure of a round
sees the same load on this small, noisy machine: per round each gets a fresh, empty cache (a
new channel, a new index, a new proxpi process) for a cold install, then a warm one, then a
cached page with wrk; repo's local channel is measured beside its mirror in the same turn, the
figure the targets divide by. Last, a large file proxied cold, its first byte timed and the
server's memory sampled."""

from __future__ import annotations

import os
import random
import re
import statistics
import subprocess
import urllib.parse
from functools import partial
from pathlib import Path

from . import measure
from .memory import PeakSampler, usage
from .peers import PASSWORD, USER, DevpiServer, venv, version
from .report import Results
from .servers import NGINX_CONF, NginxServer, RepoServer, Service, free_port
from .static import project_of

PROXPI = ("proxpi==1.3.1", "gunicorn")
PAGE_KEYS = ("mirror_rps", "mirror_local_rps")
INSTALL_KEYS = ("mirror_cold", "mirror_warm", "mirror_local_warm")
BIG_KEYS = ("mirror_big_ttfb", "mirror_big_pss")
KEYS = PAGE_KEYS + INSTALL_KEYS + BIG_KEYS
SLICE_SECONDS = 2  # the local and mirror page runs take turns this often
PAGES = 1000  # the cached pages wrk asks for, as many as the local page row's
# proxpi answers 406 to a request without one; every mirror gets it, so they compare.
ACCEPT = "text/html"


class Upstream(NginxServer):
    """The one upstream of every mirror: nginx on a static PEP 503 tree (sha256 fragments,
    files under /files/ on the same host), answering without credentials as PyPI does."""

    name = "upstream"

    def start(self) -> None:
        port = free_port()
        (self.workdir / "tmp").mkdir(exist_ok=True)
        conf = self.workdir / "nginx.conf"
        user = "user root;\n" if os.geteuid() == 0 else ""
        open_conf = re.sub(r"\s*auth_basic[^;]*;", "", NGINX_CONF)
        conf.write_text(
            open_conf.format(user=user, root=self.workdir, port=port, tree=self.tree, htpasswd="")
        )
        self.spawn(["nginx", "-c", str(conf), "-p", str(self.workdir), "-g", "daemon off;"])
        self.url = f"http://127.0.0.1:{port}"
        self.wait_until("/simple/")


class Mirror:
    """One mirroring server as the measurements see it: `fresh()` gives the simple root of an
    empty cache; `server` answers it (URL, credentials, processes)."""

    server: Service
    local: Service | None = None  # a server with a local channel to measure beside the mirror

    @property
    def name(self) -> str:
        return self.server.name

    def fresh(self) -> str:
        raise NotImplementedError

    def root_url(self, root: str) -> str:
        url = self.server.url + root
        pair = ":".join(urllib.parse.quote(part, safe="") for part in self._credentials())
        return url.replace("http://", f"http://{pair}@", 1)

    def _credentials(self) -> tuple[str, str]:
        return self.server.user, self.server.password


class RepoMirror(Mirror):
    """A new channel of the running repo per cold cache, mirroring the upstream (TTL 1 h, so
    the wrk run reads cached pages, not revalidations)."""

    def __init__(self, server: RepoServer, upstream: Upstream):
        self.server, self.upstream, self.count = server, upstream, 0
        self.local = server

    def fresh(self) -> str:
        self.count += 1
        channel = f"mirror-{self.count}"
        self.server.cli("channel", "create", channel, "--owner", USER)
        source = f"{self.upstream.url}/simple/"
        self.server.cli("mirror", "create", channel, "--type", "pypi", "--source", source,
                        "--ttl", "1h")  # fmt: skip
        return f"/api/repo/{channel}/simple/"


class DevpiMirror(DevpiServer, Mirror):
    """devpi-server with mirror indexes `root/mirror-N` of the upstream (mirror_url), not in
    offline mode (a mirror index fetches); reads are anonymous, as for the private index."""

    def __init__(self, workdir: Path, upstream: Upstream):
        super().__init__(workdir)
        self.server, self.upstream, self.count = self, upstream, 0
        self.offline = False

    def start(self) -> None:
        super().start()
        self.root_token = self._login("root", PASSWORD)

    def fresh(self) -> str:
        self.count += 1
        index = {"type": "mirror", "mirror_url": f"{self.upstream.url}/simple/", "volatile": True}
        self._api("PUT", f"/root/mirror-{self.count}", index, "root", self.root_token)
        return f"/root/mirror-{self.count}/+simple/"


class Proxpi(Service, Mirror):
    """proxpi under gunicorn (one process: its cache lives in memory; 2 threads as its Docker
    image runs it), restarted with an empty cache dir per cold cache; no credentials."""

    name = "proxpi"

    def __init__(self, workdir: Path, upstream: Upstream):
        super().__init__(workdir)
        self.server, self.upstream, self.count = self, upstream, 0
        self.versions: dict[str, str] = {}
        self.bin_dir: Path | None = None

    def start(self) -> None:
        self.bin_dir = venv(self.workdir / "venv", PROXPI)
        self.versions = {"proxpi": version(self.bin_dir, "proxpi")}
        self.fresh()

    def fresh(self) -> str:
        self.stop()
        self.count += 1
        port = free_port()
        env = {"PROXPI_INDEX_URL": f"{self.upstream.url}/simple/",
               "PROXPI_CACHE_DIR": str(self.workdir / f"cache-{self.count}")}  # fmt: skip
        command = [str(self.bin_dir / "gunicorn"), "--bind", f"127.0.0.1:{port}"]
        self.spawn([*command, "--threads", "2", "proxpi.server:app"], env)
        self.url = f"http://127.0.0.1:{port}"
        self.wait_until("/index/")
        return "/index/"

    def _credentials(self) -> tuple[str, str]:
        return USER, PASSWORD  # ignored by proxpi


def compare(mirrors: list[Mirror], upstream: Upstream, work, big: Path, results: Results,
            workdir: Path) -> None:  # fmt: skip
    """Every mirror measured in turns, round after round; each peer is started here and
    stopped whatever happens, and one that does not start has "n/a (reason)" in its rows."""
    started: list[Mirror] = []
    try:
        running = [mirror for mirror in mirrors if _start(mirror, results, started)]
        rounds = work.scale.mirror_rounds
        roots: dict[str, str] = {}

        def pages(mirror: Mirror) -> dict[str, float]:
            return cached_pages(mirror, roots[mirror.name], work, workdir)

        results.alternate(running, INSTALL_KEYS, rounds,
                          lambda mirror: installs(mirror, work, workdir, roots))  # fmt: skip
        installed = [m for m in running if results.get("mirror_cold", m.name) is not None]
        for mirror in set(running) - set(installed):
            results.fail(mirror.name, PAGE_KEYS + BIG_KEYS, "the installs failed")
        results.alternate(installed, PAGE_KEYS, rounds, pages)
        for mirror in installed:
            results.attempt(mirror.name, BIG_KEYS, partial(big_cold, mirror, roots[mirror.name],
                                                           upstream, big))  # fmt: skip
    finally:
        for mirror in started:
            mirror.server.stop()


def _start(mirror: Mirror, results: Results, started: list[Mirror]) -> bool:
    """Start a peer mirror (repo's server runs already); False, with the reason, if it fails."""
    if mirror.server.process is not None:
        return True
    started.append(mirror)
    try:
        mirror.server.start()
    except Exception as error:  # noqa: BLE001 - the run goes on without this peer
        results.fail(mirror.name, KEYS, f"did not start: {' '.join(str(error).split())}"[:120])
        return False
    return True


def installs(mirror: Mirror, work, workdir: Path, roots: dict[str, str]) -> dict[str, float]:
    """One turn: a cold pip install into a fresh cache, the same again warm, and (repo) the
    same from the local channel right after, under the same load."""
    target = workdir / f"pip-mirror-{mirror.name}" / "target"
    roots[mirror.name] = mirror.fresh()
    url = mirror.root_url(roots[mirror.name])
    figures = {
        "mirror_cold": measure.install("pip", url, work.requirements, target),
        "mirror_warm": measure.install("pip", url, work.requirements, target),
    }
    if mirror.local is not None:
        local = mirror.local.index_url()
        figures["mirror_local_warm"] = measure.install("pip", local, work.requirements, target)
    return figures


def sample(work) -> list[str]:
    return [p.name for p in random.Random(7).sample(work.projects, min(PAGES, len(work.projects)))]


def cached_pages(mirror: Mirror, root: str, work, workdir: Path) -> dict[str, float]:
    """Each sampled project's page asked for once (cached now), then wrk over them. For repo,
    wrk over the same projects' pages of the local channel too, in 2-second slices that take
    turns with the mirror's (load on this machine drifts within seconds): each figure is the
    mean rate of its slices."""
    server = mirror.server
    paths = [f"{root}{name}/" for name in sample(work)]
    for path in paths:
        measure.fetch(server.url + path, server.authorization, ACCEPT)
    seconds = work.scale.wrk_seconds
    if mirror.local is None:
        return {"mirror_rps": _wrk(server, paths, seconds, workdir, "mirror-pages")}
    local = [mirror.local.project_path(name) for name in sample(work)]
    slices = max(1, seconds // SLICE_SECONDS)
    length = seconds // slices
    turns = [(_wrk(server, paths, length, workdir, "mirror-pages"),
              _wrk(mirror.local, local, length, workdir, "local-pages"))
             for _ in range(slices)]  # fmt: skip
    return {
        "mirror_rps": statistics.mean(pair[0] for pair in turns),
        "mirror_local_rps": statistics.mean(pair[1] for pair in turns),
    }


def _wrk(server: Service, paths: list[str], seconds: int, workdir: Path, what: str) -> float:
    log = workdir / f"wrk-{server.name}-{what}.txt"
    return measure.wrk(server, paths, 16, seconds, log, (f"Accept: {ACCEPT}",)).rps


def upstream_figures(upstream: Upstream, work, big: Path, results: Results, workdir: Path) -> None:
    """The upstream's own figures, in the nginx column: its page req/s, a pip install straight
    from it, and its time to first byte for the big file."""

    def pages() -> float:
        paths = [f"/simple/{name}/" for name in sample(work)]
        log = workdir / "wrk-upstream-pages.txt"
        return measure.wrk(upstream, paths, 16, work.scale.wrk_seconds, log).rps

    target = workdir / "pip-upstream" / "target"
    url = f"{upstream.url}/simple/"
    results.attempt("nginx", PAGE_KEYS, pages)
    results.attempt("nginx", ("mirror_cold",),
                    lambda: measure.install("pip", url, work.requirements, target))  # fmt: skip
    results.attempt("nginx", ("mirror_big_ttfb",),
                    lambda: ttfb(upstream, f"{upstream.url}/files/{big.name}"))  # fmt: skip


def big_cold(mirror: Mirror, root: str, upstream: Upstream, big: Path) -> dict[str, float]:
    """The big file through the mirror, never asked for before: curl's time to first byte,
    and the server's PSS growth over its idle figure (sampled every 100 ms) until the end."""
    server = mirror.server
    project = project_of(big)
    page_url = server.url + f"{root}{project}/"
    page = measure.fetch(page_url, server.authorization, ACCEPT).decode()
    href = next(h for h in re.findall(r'href="([^"]+)"', page) if big.name in h)
    url = urllib.parse.urljoin(page_url, href.split("#")[0].replace("&amp;", "&"))
    idle = usage(server.pids())
    with PeakSampler(server.pids) as sampled:
        first_byte = ttfb(server, url)
    return {"mirror_big_ttfb": first_byte, "mirror_big_pss": sampled.peak.pss - idle.pss}


def ttfb(server: Service, url: str) -> float:
    """curl's time to first byte of `url` in ms, the whole body read (following a redirect, as
    proxpi sends one when its download takes long)."""
    command = ["curl", "--silent", "--show-error", "--fail", "--location", "--output", os.devnull]
    command += ["-H", f"Authorization: {server.authorization}"]
    command += ["--write-out", "%{time_starttransfer}", url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"curl {url}: {result.stderr.strip()}")
    return float(result.stdout) * 1000
