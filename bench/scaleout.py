"""Scale-out (issue 13): the embedded default (SQLite and a blob folder) beside app servers A
and B on one PostgreSQL database and one S3 bucket, measured in turns, round after round: an
upload rate with twine, project pages with wrk (the embedded server, A alone, A and B at
once), and pip install through each. PostgreSQL and the S3 server are the test suite's
throwaway ones (tests/stacks), started here on 127.0.0.1 and stopped at the end, also on
failure. Every figure is repo's: the table shows them in its column."""

from __future__ import annotations

import itertools
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import TypeVar

from tests.stacks.nanio import NanioServer
from tests.stacks.postgres import PostgresCluster

from . import corpus, measure
from .python_side import Workload
from .report import Results
from .servers import RepoServer

UPLOAD_KEYS = ("scale_upload_embedded", "scale_upload_one", "scale_upload_two")
PAGE_KEYS = ("scale_rps_embedded", "scale_rps_one", "scale_rps_two")
INSTALL_KEYS = ("scale_pip_embedded", "scale_pip_one", "scale_pip_two")
KEYS = UPLOAD_KEYS + PAGE_KEYS + INSTALL_KEYS
CONNECTIONS = 16  # as the page row; the pair gets half each: the same load, split in two
PAGES = 1000  # projects wrk asks for, as the page row's
REPO = SimpleNamespace(name="repo")  # the table's column: Results.alternate measures "servers"
T = TypeVar("T")


class AppServer(RepoServer):
    """`repo serve` (2 workers, as `make serve`) under a name and a data dir of its own: the
    embedded default, unless its `env` names a database and a bucket."""

    channels = (RepoServer.channel,)  # no R here

    def __init__(self, workdir: Path, name: str, workers: int = 2):
        self.name = name
        self.workers = workers
        super().__init__(workdir, max_upload_mb=64)

    def join(self, first: RepoServer) -> None:
        """Serve `first`'s database and bucket: its user, channels and token are ours too."""
        self.user, self.password = first.user, first.password
        self.serve()


def run(work: Workload, results: Results, workdir: Path) -> None:
    """Start PostgreSQL, the S3 server and the three app servers, measure, stop them all; if
    something does not start, every scale-out row says why."""
    # As root, PostgreSQL runs as `postgres`, who must reach its folder; the work dir may sit
    # in a private one (the smoke test's TMPDIR), so the cluster has a temp dir of its own.
    cluster_dir = Path(tempfile.mkdtemp(prefix="repo-bench-postgres-", dir="/tmp"))
    postgres = PostgresCluster(cluster_dir / "cluster")
    store = NanioServer(workdir / "nanio")
    servers = embedded, a, b = [
        AppServer(workdir, f"scale-{name}") for name in ("embedded", "a", "b")
    ]
    # Two app servers on two cores: a worker each, the processes one server has (PAIR).
    pair = [AppServer(workdir, f"scale-pair-{name}", workers=1) for name in ("a", "b")]
    servers += pair
    try:
        try:
            postgres.start()
            store.start()
            # No REPO_SECRET_KEY: with a database URL the database holds the key they share.
            storage = {
                "REPO_DATABASE_URL": postgres.fresh_database("bench"),
                "REPO_BLOB_URL": store.fresh_bucket("repo-bench"),
                **store.environ,
            }
            for server in (a, b, *pair):
                server.env.update(storage)
            at_once([embedded.start, a.start])
            at_once([lambda s=server: s.join(a) for server in (b, *pair)])
        except Exception as error:  # noqa: BLE001 - the run goes on without these rows
            results.fail("repo", KEYS, f"did not start: {' '.join(str(error).split())}"[:120])
            return
        measure_all(embedded, a, b, pair, work, results, workdir)
    finally:
        at_once([server.stop for server in servers])
        store.stop()
        postgres.stop()
        shutil.rmtree(cluster_dir, ignore_errors=True)


def measure_all(embedded: AppServer, a: AppServer, b: AppServer, pair: list[AppServer],
                work: Workload, results: Results, workdir: Path) -> None:  # fmt: skip
    """Uploads (which load the pages' projects), then pages, then installs; each in turns."""
    scale = work.scale
    corpus_dir = workdir / "scaleout-corpus"
    rounds = itertools.count(1)
    names: list[str] = []  # projects uploaded to the embedded server and to A alike

    def upload(server: AppServer, paths: list[Path]) -> float:
        return measure.twine_upload(server, paths, workdir / f"twine-{server.name}.log")

    def uploads(_column) -> dict[str, float]:
        number, count = next(rounds), scale.scaleout_files
        same, names_now = wheels(corpus_dir, f"scale-{number}", count)
        split, _ = wheels(corpus_dir, f"scale-pair-{number}", count)
        halves = [(server, split[index::2]) for index, server in enumerate((a, b))]
        figures = {
            "scale_upload_embedded": count / upload(embedded, same),
            "scale_upload_one": count / upload(a, same),
            "scale_upload_two": count / at_once(
                [lambda s=server, p=paths: upload(s, p) for server, paths in halves])[1],
        }  # fmt: skip
        names.extend(names_now)
        return figures

    def pages(_column) -> dict[str, float]:
        if not names:
            raise RuntimeError("no projects to ask for: the uploads failed")
        sample = random.Random(7).sample(names, min(PAGES, len(names)))
        paths = [a.project_path(name) for name in sample]

        def rate(server: AppServer, connections: int) -> float:
            out = workdir / f"wrk-{server.name}-pages-{connections}c.txt"
            return measure.wrk(server, paths, connections, scale.scaleout_seconds, out).rps

        alone = {"scale_rps_embedded": rate(embedded, CONNECTIONS),
                 "scale_rps_one": rate(a, CONNECTIONS)}  # fmt: skip
        both, _ = at_once([lambda s=server: rate(s, CONNECTIONS // 2) for server in pair])
        return {**alone, "scale_rps_two": sum(both)}

    through = {"scale_pip_embedded": embedded, "scale_pip_one": a, "scale_pip_two": b}
    turns = itertools.count(1)

    def install(server: AppServer) -> float:
        target = workdir / f"pip-{server.name}" / "target"
        return measure.install("pip", server.index_url(), work.requirements, target)

    def installs(_column) -> dict[str, float]:
        if next(turns) == 1:
            # Untimed, once: what pip installs goes in (the real projects, or offline the
            # synthetic ones), then one install through each, so that B's read-through cache
            # has fetched what A uploaded, once per host, as in a steady state.
            installable = work.real or [path for p in work.projects for path in p.files]
            at_once([lambda s=server: upload(s, installable) for server in (embedded, a)])
            at_once([lambda s=server: install(s) for server in through.values()])
        return {key: install(server) for key, server in through.items()}

    results.alternate([REPO], UPLOAD_KEYS, scale.scaleout_rounds, uploads)
    results.alternate([REPO], PAGE_KEYS, scale.scaleout_rounds, pages)
    results.alternate([REPO], INSTALL_KEYS, scale.installs, installs)


def wheels(root: Path, prefix: str, count: int) -> tuple[list[Path], list[str]]:
    """`count` new one-wheel projects `PREFIX-00000`...: an upload that stores new content
    in every store (an identical re-upload would skip the work); their paths and names."""
    root.mkdir(parents=True, exist_ok=True)
    names = [f"{prefix}-{index:05d}" for index in range(count)]
    paths = []
    for name in names:
        path = root / f"{name.replace('-', '_')}-1.0-py3-none-any.whl"
        path.write_bytes(corpus.wheel(name, "1.0"))
        paths.append(path)
    return paths, names


def at_once(calls: list[Callable[[], T]]) -> tuple[list[T], float]:
    """Run `calls` at the same moment, one thread each (each runs a client process); their
    results and the wall time until the last one ended."""
    started = time.monotonic()
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        done = [future.result() for future in futures]
    return done, time.monotonic() - started
