"""Mirrors of one local upstream (issue 11): repo's mirror channel, a devpi-server mirror index
and proxpi, each fed by the same static PEP 503 tree that an nginx without credentials serves.
Each mirror is asked for fresh, empty caches (a new channel, a new index, a new proxpi
process) for the cold installs, then measured warm: a cached page with wrk, a second install,
and a large file proxied cold with its time to first byte and the server's memory sampled."""

from __future__ import annotations

import os
import random
import re
import subprocess
import urllib.parse
from pathlib import Path

from . import measure
from .memory import PeakSampler, usage
from .peers import PASSWORD, USER, DevpiServer, venv, version
from .report import Results
from .scale import Scale
from .servers import NGINX_CONF, NginxServer, RepoServer, Service, free_port
from .static import project_of

PROXPI = ("proxpi==1.3.1", "gunicorn")
PAGE_KEYS = ("mirror_rps",)
INSTALL_KEYS = ("mirror_cold", "mirror_warm")
BIG_KEYS = ("mirror_big_ttfb", "mirror_big_pss")
KEYS = PAGE_KEYS + INSTALL_KEYS + BIG_KEYS
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


def measure_all(
    mirror: Mirror, upstream: Upstream, work, big: Path, results: Results, workdir: Path
) -> None:
    """Cold and warm installs, a cached page's req/s, the big file's cold TTFB and memory."""
    name = mirror.server.name
    scale: Scale = work.scale
    target = workdir / f"pip-mirror-{name}" / "target"
    roots: list[str] = []

    def installs() -> dict[str, float]:
        cold, warm = [], []
        for _ in range(scale.installs):
            roots.append(mirror.fresh())
            url = mirror.root_url(roots[-1])
            cold.append(measure.install("pip", url, work.requirements, target))
            warm.append(measure.install("pip", url, work.requirements, target))
        return {
            "mirror_cold": sorted(cold)[len(cold) // 2],
            "mirror_warm": sorted(warm)[len(warm) // 2],
        }

    if not results.attempt(name, INSTALL_KEYS, installs):
        results.fail(name, PAGE_KEYS + BIG_KEYS, "the installs failed")
        return
    results.attempt(name, PAGE_KEYS, lambda: cached_pages(mirror, roots[-1], work, workdir))
    results.attempt(name, BIG_KEYS, lambda: big_cold(mirror, roots[-1], upstream, big))


def sample(work) -> list[str]:
    return [p.name for p in random.Random(7).sample(work.projects, min(PAGES, len(work.projects)))]


def cached_pages(mirror: Mirror, root: str, work, workdir: Path) -> float:
    """Each sampled project's page asked for once (cached now), then wrk over them."""
    server = mirror.server
    paths = [f"{root}{name}/" for name in sample(work)]
    for path in paths:
        measure.fetch(server.url + path, server.authorization, ACCEPT)
    log = workdir / f"wrk-{server.name}-mirror-pages.txt"
    headers = (f"Accept: {ACCEPT}",)
    return measure.wrk(server, paths, 16, work.scale.wrk_seconds, log, headers).rps


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


def alone(
    mirror: Mirror, upstream: Upstream, work, big: Path, results: Results, workdir: Path
) -> None:
    """A peer mirror on its own: started, measured, stopped whatever happens; one that does
    not start has "n/a (reason)" in every mirror row."""
    server = mirror.server
    try:
        try:
            server.start()
        except Exception as error:  # noqa: BLE001 - the run goes on without this peer
            results.fail(server.name, KEYS, f"did not start: {' '.join(str(error).split())}"[:120])
            return
        measure_all(mirror, upstream, work, big, results, workdir)
    finally:
        server.stop()
