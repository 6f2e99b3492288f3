"""`python -m bench` (`make bench`): load the same packages into repo, pypiserver, devpi and a
static nginx, run the same clients against each, and print one table with repo's ratio to
each and the issue's targets. repo runs beside nginx, its measurements alternating with
nginx's (the targets are ratios to it), and its mirror channel takes turns with devpi's and
proxpi's mirrors; then the embedded default takes turns with two app servers on PostgreSQL
and S3 (issue 13); each private-index peer runs alone after them. Everything listens on
127.0.0.1 and is stopped at the end, also on failure. `--smoke` runs every measurement once
at a tiny size, offline, so that `make test` keeps the harness working."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from . import big, corpus, environment, mirrors, python_side, r, report, scaleout
from .peers import DevpiServer, PypiServer, htpasswd
from .report import Results
from .scale import FULL, QUICK, SMOKE, MiB, Scale
from .servers import NginxServer, RepoServer, Service

HERE = Path(__file__).resolve().parent
LOAD_KEYS = ("load_total", "load_first", "load_last")
READ_KEYS = ("simple_rps", "simple_p99", "root_p50", "pip_install", "uv_install", "download", "pss")
DOWNLOAD_PROJECT = "bench-download"
BIG_PROJECT = "bench-big"
MIRROR_BIG_PROJECT = "bench-mirror-big"
CLOCK = time.monotonic()
SMOKE_MODE = (
    " (smoke mode: every measurement ran once at a tiny size; pypiserver, devpi and proxpi left"
    " out,"
    " they install from PyPI; the figures mean nothing)"
)


def say(text: str) -> None:
    print(f"[{time.monotonic() - CLOCK:6.0f} s] {text}", flush=True)


def prepare(scale: Scale, cache: Path) -> python_side.Workload:
    real = "real projects" if scale.real else "no real projects"
    say(f"corpus: {scale.projects} synthetic projects, {real}, the download file")
    projects = corpus.synthetic(cache / f"synthetic-{scale.projects}", scale.projects, scale.sdists)
    download_dir = cache / "download"
    download_dir.mkdir(parents=True, exist_ok=True)
    if scale.real:
        real_files, requirements = corpus.real(cache / "real"), list(corpus.REAL_PROJECTS)
    else:  # offline: pip and uv install the synthetic projects instead
        real_files, requirements = [], [project.name for project in projects]
    return python_side.Workload(
        projects=projects,
        real=real_files,
        requirements=requirements,
        download=corpus.big_wheel(download_dir, DOWNLOAD_PROJECT, scale.download_mib * MiB),
        download_project=DOWNLOAD_PROJECT,
        scale=scale,
    )


def side_by_side(servers: list[Service], results: Results, body: Callable[..., None]) -> None:
    """Start `servers`, run `body` with those that started, and stop them all whatever
    happens; a server that does not start has "n/a (reason)" in every Python row."""
    running = []
    try:
        for server in servers:
            say(f"{server.name}: starting")
            try:
                server.start()
            except Exception as error:  # noqa: BLE001 - the run goes on without this peer
                reason = f"did not start: {' '.join(str(error).split())}"[:120]
                results.fail(server.name, LOAD_KEYS + READ_KEYS, reason)
                continue
            running.append(server)
        if running:
            body(running)
    finally:
        for server in servers:
            server.stop()
        say(f"{', '.join(server.name for server in servers)}: stopped")


def load(server: Service, work: python_side.Workload, results: Results, workdir: Path) -> bool:
    """Load `server` with the Python workload; False when that failed (nothing to read then)."""
    say(f"{server.name}: loading {len(work.projects)} projects")
    if isinstance(server, NginxServer):
        return True  # its tree was written before it started
    if not results.attempt(server.name, LOAD_KEYS, lambda: python_side.load(server, work, workdir)):
        results.fail(server.name, READ_KEYS, "the load failed")
        return False
    if isinstance(server, PypiServer):
        results.note("load_total", server.name, "estimate: middle copied")
    return True


def run(
    scale: Scale, skip: set[str], cache: Path, workdir: Path, results: Results
) -> dict[str, str]:
    """The mirrors' upstream for the whole run; repo beside nginx (the targets are ratios to
    it), then each peer alone; returns the peers' versions."""
    work = prepare(scale, cache)
    upstream = mirrors.Upstream(workdir, htpasswd=Path())
    say(f"upstream: {scale.big_mib} MiB file for the mirrors, starting")
    mirror_big = corpus.big_wheel(workdir, MIRROR_BIG_PROJECT, scale.big_mib * MiB)
    python_side.load_nginx(upstream, work, [mirror_big])
    try:
        upstream.start()
        return run_servers(work, skip, workdir, results, upstream, mirror_big)
    finally:
        upstream.stop()


def run_servers(
    work: python_side.Workload, skip: set[str], workdir: Path, results: Results,
    upstream: mirrors.Upstream, mirror_big: Path,
) -> dict[str, str]:  # fmt: skip
    scale = work.scale
    passwords = htpasswd(workdir / "htpasswd")
    repo = RepoServer(workdir, max_upload_mb=scale.big_mib + 64)
    nginx = NginxServer(workdir, passwords)
    python_side.load_nginx(nginx, work)
    mirror_dir = workdir / "mirrors"
    peer_mirrors = [
        mirrors.RepoMirror(repo, upstream),
        *(peer(mirror_dir, upstream) for peer in (mirrors.DevpiMirror, mirrors.Proxpi)
          if peer.name not in skip),
    ]  # fmt: skip

    def repo_and_nginx(running: list[Service]) -> None:
        loaded = [server for server in running if load(server, work, results, workdir)]
        say(f"{', '.join(server.name for server in loaded)}: reads")
        python_side.reads(loaded, work, results, workdir)
        if repo not in loaded:
            return
        say(f"repo: {scale.big_mib} MiB upload and download, memory sampled")
        path = corpus.big_wheel(workdir, BIG_PROJECT, scale.big_mib * MiB)
        keys = ("big_pss_delta", "big_rss_peak", "big_upload", "big_download")
        results.attempt("repo", keys, lambda: big.upload_and_download(repo, path, BIG_PROJECT))
        path.unlink()
        say("mirrors of the upstream, in turns (the upstream's own figures first)")
        mirrors.upstream_figures(upstream, work, mirror_big, results, workdir)
        mirrors.compare(peer_mirrors, upstream, work, mirror_big, results, workdir)
        say(f"repo: R channel of {scale.r_packages} packages")
        if r.prepare(repo, scale, results, workdir):
            r.copy_index(repo, nginx)
            r.reads(running, scale, results, workdir)

    side_by_side([repo] + ([] if "nginx" in skip else [nginx]), results, repo_and_nginx)
    say("scale-out: the embedded default, A alone, A and B on PostgreSQL + S3, in turns")
    scaleout.run(work, results, workdir)
    versions = {}
    for peer in (DevpiServer(workdir), PypiServer(workdir, passwords)):
        if peer.name in skip:
            continue

        def alone(running: list[Service]) -> None:
            if load(running[0], work, results, workdir):
                say(f"{running[0].name}: reads")
                python_side.reads(running, work, results, workdir)

        side_by_side([peer], results, alone)
        versions.update(peer.versions)
    for mirror in peer_mirrors[1:]:
        versions.update(mirror.server.versions)
    return versions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    quick = "500 projects, 2000 R packages, a 100 MiB file: for iterating"
    size.add_argument("--quick", action="store_true", help=quick)
    smoke = "every measurement once at a tiny size, offline, without pypiserver, devpi, proxpi"
    size.add_argument("--smoke", action="store_true", help=f"{smoke} (make test); needs --output")
    peers = ("pypiserver", "devpi", "proxpi", "nginx")
    parser.add_argument("--skip", action="append", default=[], choices=peers, help="leave out")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, data)")
    # A quick run never overwrites the full run's figures; a smoke run's are not figures.
    where = "default: bench/results.md, with --quick bench/results-quick.md"
    parser.add_argument("--output", type=Path, help=where)
    args = parser.parse_args(argv)
    if args.smoke and args.output is None:
        parser.error("--smoke needs --output: its figures must not stand beside a real run's")
    # A SIGTERM (a timeout, a CI runner) unwinds like Ctrl-C, so every server is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    output = args.output or HERE / ("results-quick.md" if args.quick else "results.md")
    workdir = Path(tempfile.mkdtemp(prefix="repo-bench-"))
    scale, mode, skip, cache = FULL, "", set(args.skip), HERE / ".cache"
    if args.quick:
        scale, mode = QUICK, " (quick mode, not the targets scale)"
    if args.smoke:
        # The peers install from PyPI, which a test must not need. The corpus is built in
        # milliseconds: a cache in the work dir leaves nothing behind in the checkout and
        # never replaces the other sizes' cached download file.
        scale, mode, cache = SMOKE, SMOKE_MODE, workdir / "cache"
        skip |= {"pypiserver", "devpi", "proxpi"}
    results = Results()
    load_before = environment.load_average()
    say(f"work dir {workdir}")
    try:
        peers = run(scale, skip, cache, workdir, results)
    finally:
        if args.keep:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    text = render(scale, mode, results, peers, load_before)
    print("\n" + text)
    output.write_text(text)
    say(f"written to {output}")
    missing = [row.key for row in report.rows(scale) if results.get(row.key, "repo") is None]
    if missing:
        print(f"repo figures not measured: {', '.join(missing)}", file=sys.stderr)
    return 1 if missing else 0


def render(
    scale: Scale, mode: str, results: Results, peers: dict[str, str], load_before: str
) -> str:
    versions = environment.versions(peers)
    return "\n".join(
        [
            f"# Benchmark results{mode}",
            "",
            f"- date: {environment.now()}",
            f"- machine: {environment.machine()}",
            "- versions: " + ", ".join(f"{name} {value}" for name, value in versions.items()),
            f"- run time: {time.monotonic() - CLOCK:.0f} s; load average before the run"
            f" {load_before}, after it {environment.load_average()} (anything else running on"
            " the machine makes the figures noisy)",
            "",
            report.table(results, scale),
            "",
            "↑: higher is better, ↓: lower is better. Ratios are repo's figure divided by the"
            " peer's.",
            "",
            "## Targets (issue)",
            "",
            report.verdict_lines(report.targets(results)),
            "",
            "## Scale-out: PostgreSQL + S3 against the embedded default (issue 13)",
            "",
            report.scaleout_lines(results),
            "",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
