"""The Python side's workload, run the same way against every server: the synthetic load with
twine (first and last window timed), the real projects, then reads with wrk, pip, uv, curl."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import measure, memory
from .corpus import Project
from .peers import PypiServer
from .report import Results
from .scale import Scale
from .servers import NginxServer, Service
from .static import write_tree


@dataclass(frozen=True)
class Workload:
    """What every server is loaded with and asked for."""

    projects: list[Project]
    real: list[Path]  # the real projects' files
    requirements: list[str]  # what pip and uv install
    download: Path  # the wheel whose download rate is measured
    download_project: str
    scale: Scale


def load(server: Service, work: Workload, workdir: Path) -> dict[str, float]:
    """Upload the synthetic projects window by window, timing each, then the real files;
    return load_total, load_first and load_last in seconds."""
    log = workdir / f"twine-{server.name}.log"
    size = work.scale.window
    windows = [work.projects[i : i + size] for i in range(0, len(work.projects), size)]
    shortcut = isinstance(server, PypiServer) and len(windows) > 2
    times = []
    for number, window in enumerate(windows):
        paths = [path for project in window for path in project.files]
        if shortcut and 0 < number < len(windows) - 1:
            # pypiserver's state is its directory: the middle is filled by copying what its
            # uploads would leave there, to keep the run bounded; first and last are uploads.
            for path in paths:
                shutil.copy(path, server.packages / path.name)
            continue
        times.append(measure.twine_upload(server, paths, log))
    measure.twine_upload(server, [*work.real, work.download], log)
    print(f"  {server.name}: upload windows (s): {' '.join(f'{t:.1f}' for t in times)}")
    first, last = times[0], times[-1]
    # With the shortcut, the middle windows are estimated at the mean of the two ends (the
    # cost per file grows with the directory); the table marks the total as an estimate.
    total = first + last + (len(windows) - 2) * (first + last) / 2 if shortcut else sum(times)
    return {"load_total": total, "load_first": first, "load_last": last}


def load_nginx(server: NginxServer, work: Workload, extra: list[Path] = ()) -> None:
    """nginx gets the same distributions as a static tree instead of uploads (`extra` too)."""
    files = [path for project in work.projects for path in project.files]
    write_tree(server.tree, [*files, *work.real, work.download, *extra])


def reads(servers: list[Service], work: Workload, results: Results, workdir: Path) -> None:
    """Index pages with wrk, installs with pip and uv, a download with curl, then memory.

    With several servers (repo and nginx), each measurement alternates between them, so the
    ratios that the targets are stated in compare figures taken under the same conditions.
    """
    scale = work.scale
    sample = random.Random(7).sample(work.projects, min(1000, len(work.projects)))

    def pages(server: Service) -> dict[str, float]:
        paths = [server.project_path(project.name) for project in sample]
        log = workdir / f"wrk-{server.name}-project-pages.txt"
        run = measure.wrk(server, paths, 16, scale.wrk_seconds, log)
        return {"simple_rps": run.rps, "simple_p99": run.p99}

    def root(server: Service) -> float:
        log = workdir / f"wrk-{server.name}-root.txt"
        return measure.wrk(server, [server.simple_root], 1, scale.latency_seconds, log).p50

    def install(client: str) -> Callable[[Service], float]:
        def run(server: Service) -> float:
            target = workdir / f"{client}-{server.name}" / "target"
            return measure.install(client, server.index_url(), work.requirements, target)

        return run

    urls: dict[str, str] = {}

    def download(server: Service) -> float:
        if server.name not in urls:
            urls[server.name] = measure.file_url(server, work.download_project, work.download.name)
            measure.download_mbps(server, urls[server.name])  # a warm-up: into the page cache
        return measure.download_mbps(server, urls[server.name])

    results.alternate(servers, ("simple_rps", "simple_p99"), 1, pages)
    results.alternate(servers, ("root_p50",), 1, root)
    results.alternate(servers, ("pip_install",), scale.installs, install("pip"))
    results.alternate(servers, ("uv_install",), scale.installs, install("uv"))
    results.alternate(servers, ("download",), scale.downloads, download)
    results.alternate(servers, ("pss",), 1, lambda server: memory.usage(server.pids()).pss)
