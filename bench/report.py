"""The figures of one run, the table that shows them side by side with repo's ratio to each
peer, and the issue's targets checked against them."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .scale import Scale

SERVERS = ("repo", "pypiserver", "devpi", "proxpi", "nginx")
PEERS = SERVERS[1:]
# What one measurement returns: the figure of its one key, or figures by key.
Measured = float | dict[str, float]


class Named(Protocol):
    name: str


@dataclass(frozen=True)
class Row:
    """One metric: its key, what it measures, its unit and which way is better."""

    key: str
    label: str
    unit: str
    higher_is_better: bool


def rows(scale: Scale) -> list[Row]:
    files = scale.projects + scale.sdists
    first, last = f"first {scale.window}", f"last {scale.window}"
    r = f"{scale.r_packages:,} R packages"
    installed = (
        "10 real projects (25 files)" if scale.real else f"{scale.projects} synthetic projects"
    )
    return [
        Row(
            "simple_rps",
            f"GET /simple/PROJECT/ at {scale.projects:,} projects, wrk 2 threads 16 connections",
            "req/s",
            True,
        ),
        Row("simple_p99", "GET /simple/PROJECT/, p99 latency (same run)", "ms", False),
        Row("root_p50", "GET /simple/ root, p50 latency, one connection", "ms", False),
        Row(
            "load_total",
            f"upload {files:,} files of {scale.projects:,} projects with twine",
            "s",
            False,
        ),
        Row("load_first", f"upload of the {first} projects", "s", False),
        Row("load_last", f"upload of the {last} projects", "s", False),
        Row("pip_install", f"pip install of {installed}, no cache", "s", False),
        Row("uv_install", "uv pip install of the same, no cache", "s", False),
        Row("download", f"one {scale.download_mib} MiB file download, curl", "MB/s", True),
        Row("pss", "server memory after the load and reads (PSS)", "MiB", False),
        Row(
            "big_pss_delta",
            f"PSS growth during a {scale.big_mib} MiB upload and download",
            "MiB",
            False,
        ),
        Row(
            "big_rss_peak",
            f"peak RSS during the {scale.big_mib} MiB upload and download",
            "MiB",
            False,
        ),
        Row(
            "big_upload",
            f"the {scale.big_mib} MiB upload through gunicorn, curl as twine sends it",
            "MB/s",
            True,
        ),
        Row("big_download", f"the {scale.big_mib} MiB download, curl", "MB/s", True),
        Row(
            "mirror_rps",
            f"mirror: a cached GET /simple/PROJECT/, {min(1000, scale.projects):,} projects, wrk"
            " 2 threads 16 connections (nginx: the upstream itself)",
            "req/s",
            True,
        ),
        Row(
            "mirror_local_rps",
            "mirror: a local channel's pages of the same projects, in the same turn",
            "req/s",
            True,
        ),  # fmt: skip
        Row("mirror_cold", f"mirror: cold pip install of {installed}, empty cache", "s", False),
        Row("mirror_warm", "mirror: the same pip install again, cached", "s", False),
        Row(
            "mirror_local_warm",
            "mirror: the same pip install from a local channel, in the same turn",
            "s",
            False,
        ),  # fmt: skip
        Row("mirror_big_ttfb", f"mirror: first byte, {scale.big_mib} MiB file, cold", "ms", False),
        Row("mirror_big_pss", "mirror: PSS growth while proxying that file", "MiB", False),
        Row("r_load", f"{r} loaded through repo's Python API (setup)", "s", False),
        Row("r_cold", f"first PACKAGES.gz request at {r} (index build)", "ms", False),
        Row("r_visible", "curl upload of an R package until it shows in PACKAGES", "s", False),
        Row("r_rds_rps", f"GET PACKAGES.rds at {r}, wrk 2 threads 16 connections", "req/s", True),
        Row("r_gz_rps", "GET PACKAGES.gz, same", "req/s", True),
        Row("r_gz_p50", "GET PACKAGES.gz, p50 latency, one connection", "ms", False),
        Row("r_available", f"Rscript available.packages() at {r}", "s", False),
        *scaleout_rows(scale, installed),
    ]


def scaleout_rows(scale: Scale, installed: str) -> list[Row]:
    """Issue 13's rows: the embedded default, app server A alone and A with B on one
    PostgreSQL database and one S3 bucket, in turns (bench/scaleout.py)."""
    wheels = f"{scale.scaleout_files:,} new one-wheel projects"
    return [
        Row("scale_rps_embedded", "scale-out: GET /simple/PROJECT/ on the embedded default"
            " (SQLite + folder), wrk 16 connections, in turns with the next two", "req/s", True),
        Row("scale_rps_one", "scale-out: the same on PostgreSQL + S3, app server A alone",
            "req/s", True),
        Row("scale_rps_two", "scale-out: the same on two app servers of one worker each at"
            " once, a wrk of 8 connections each, summed", "req/s", True),
        Row("scale_upload_embedded", f"scale-out: upload of {wheels} with twine, the embedded"
            " default", "files/s", True),
        Row("scale_upload_one", "scale-out: the same through A", "files/s", True),
        Row("scale_upload_two", "scale-out: the same, half through A and half through B at once",
            "files/s", True),
        Row("scale_pip_embedded", f"scale-out: pip install of {installed}, the embedded default",
            "s", False),
        Row("scale_pip_one", "scale-out: the same pip install through A", "s", False),
        Row("scale_pip_two", "scale-out: the same through B (uploaded through A)", "s", False),
    ]  # fmt: skip


class Results:
    """Figures by (metric, server); a figure that could not be measured keeps its reason."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], float] = {}
        self.reasons: dict[tuple[str, str], str] = {}
        self.notes: dict[tuple[str, str], str] = {}

    def put(self, key: str, server: str, value: float) -> None:
        self.values[key, server] = value
        print(f"  {server}: {key} = {_number(value)}", flush=True)

    def note(self, key: str, server: str, text: str) -> None:
        """A remark shown beside the figure, such as "estimate"."""
        self.notes[key, server] = text

    def fail(self, server: str, keys: tuple[str, ...], reason: str) -> None:
        for key in keys:
            self.reasons.setdefault((key, server), reason)
        print(f"  {server}: {', '.join(keys)}: n/a ({reason})", flush=True)

    def attempt(self, server: str, keys: tuple[str, ...], measure: Callable[[], Measured]) -> bool:
        """Run `measure` (the value of the one key, or a dict by key); on any error record
        the reason for every key and go on. False when it failed."""
        try:
            value = measure()
        except Exception as error:  # noqa: BLE001 - a peer's failure must not stop the run
            self.fail(server, keys, _reason(error))
            return False
        for key, figure in _by_key(keys, value).items():
            self.put(key, server, figure)
        return True

    def alternate(
        self, servers: Sequence[Named], keys: tuple[str, ...], runs: int,
        measure: Callable[[Any], Measured],
    ) -> None:  # fmt: skip
        """Measure the servers in turn, `runs` rounds, so that all see the same load on the
        machine; record each one's median per key, or why it failed."""
        samples: dict[str, dict[str, list[float]]] = {server.name: {} for server in servers}
        for _ in range(runs):
            for server in servers:
                if server.name not in samples:
                    continue
                try:
                    value = measure(server)
                except Exception as error:  # noqa: BLE001 - as in attempt()
                    self.fail(server.name, keys, _reason(error))
                    del samples[server.name]
                    continue
                for key, figure in _by_key(keys, value).items():
                    samples[server.name].setdefault(key, []).append(figure)
        for name, figures in samples.items():
            for key, values in figures.items():
                self.put(key, name, statistics.median(values))

    def get(self, key: str, server: str) -> float | None:
        return self.values.get((key, server))

    def cell(self, key: str, server: str) -> str:
        value = self.get(key, server)
        if value is None:
            reason = self.reasons.get((key, server))
            return f"n/a ({reason})" if reason else "–"
        note = self.notes.get((key, server))
        return _number(value) + (f" ({note})" if note else "")


def _by_key(keys: tuple[str, ...], value: Measured) -> dict[str, float]:
    return value if isinstance(value, dict) else {keys[0]: value}


def _reason(error: Exception) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _number(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def table(results: Results, scale: Scale) -> str:
    """The markdown table: one row per metric, a column per server, repo's ratio to each."""
    head = ["metric", "unit", *SERVERS, *(f"repo / {peer}" for peer in PEERS)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for row in rows(scale):
        if not any(
            (row.key, server) in results.values or (row.key, server) in results.reasons
            for server in SERVERS
        ):
            continue
        arrow = "↑" if row.higher_is_better else "↓"
        cells = [f"{row.label} ({arrow})", row.unit]
        cells += [results.cell(row.key, server) for server in SERVERS]
        cells += [
            _ratio(results.get(row.key, "repo"), results.get(row.key, peer)) for peer in PEERS
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ratio(mine: float | None, theirs: float | None) -> str:
    if mine is None or theirs is None or theirs == 0:
        return "–"
    return f"{mine / theirs:.2f}x"


@dataclass(frozen=True)
class Verdict:
    """One of the issue's targets, and whether this run meets it."""

    target: str
    met: bool | None  # None: a figure it needs is missing
    shown: str


def targets(results: Results) -> list[Verdict]:
    """The issue's targets, in its order, checked against repo's figures."""
    get = results.get
    checks: list[tuple[str, list[float | None], Callable[..., tuple[bool, str]]]] = [
        (
            "/simple/PROJECT/ req/s at least 0.1x nginx's",
            [get("simple_rps", "repo"), get("simple_rps", "nginx")],
            lambda mine, ceiling: (mine >= 0.1 * ceiling, f"{mine / ceiling:.3f}x nginx"),
        ),
        (
            "/simple/PROJECT/ p99 under 10 ms",
            [get("simple_p99", "repo")],
            lambda p99: (p99 < 10, f"p99 {p99:.2f} ms"),
        ),
        (
            "/simple/ root p50 under 0.5 ms",
            [get("root_p50", "repo")],
            lambda p50: (p50 < 0.5, f"p50 {p50:.3f} ms"),
        ),
        (
            "the whole load in under 60 s",
            [get("load_total", "repo")],
            lambda total: (total < 60, f"{total:.1f} s"),
        ),
        (
            "the last window of projects uploads no slower than the first",
            [get("load_first", "repo"), get("load_last", "repo")],
            lambda first, last: (last <= first, f"last/first {last / first:.2f}"),
        ),
        (
            "pip install within 1.1x of nginx's time",
            [get("pip_install", "repo"), get("pip_install", "nginx")],
            lambda mine, ceiling: (mine <= 1.1 * ceiling, f"{mine / ceiling:.2f}x nginx"),
        ),
        (
            "downloads at least 0.5x of nginx's MB/s",
            [get("download", "repo"), get("download", "nginx")],
            lambda mine, ceiling: (mine >= 0.5 * ceiling, f"{mine / ceiling:.2f}x nginx"),
        ),
        (
            "under 100 MB PSS after the load",
            [get("pss", "repo")],
            lambda pss: (pss < 100, f"{pss:.0f} MiB"),
        ),
        (
            "memory flat (±20 MB) during the large upload and download",
            [get("big_pss_delta", "repo")],
            lambda delta: (delta <= 20, f"+{delta:.1f} MiB PSS"),
        ),
        (
            "an R upload visible in PACKAGES* within 1 s",
            [get("r_visible", "repo")],
            lambda seconds: (seconds < 1, f"{seconds:.2f} s"),
        ),
        (
            "R index files served from a cache (warm p50 under a tenth of the build)",
            [get("r_gz_p50", "repo"), get("r_cold", "repo")],
            lambda warm, cold: (warm < cold / 10, f"warm {warm:.2f} ms, build {cold:.0f} ms"),
        ),
        (
            "the large upload (1 GiB at full scale) at least 300 MB/s through gunicorn (issue 10)",
            [get("big_upload", "repo")],
            lambda rate: (rate >= 300, f"{rate:.0f} MB/s"),
        ),
    ]
    checks += mirror_checks(results)
    checks += scaleout_checks(results)
    verdicts = []
    for target, figures, check in checks:
        if any(figure is None for figure in figures):
            verdicts.append(Verdict(target, None, "not measured"))
        elif check is LEFT_OUT:
            verdicts.append(Verdict(target, None, LEFT_OUT))
        else:
            verdicts.append(Verdict(target, *check(*figures)))
    return verdicts


LEFT_OUT = "devpi left out (--skip or --smoke)"


def mirror_checks(results: Results) -> list[tuple[str, list[float | None], Any]]:
    """Issue 11's targets: the mirror against a local channel, devpi's mirror and the upstream."""
    get = results.get
    devpi_ran = any(server == "devpi" for _key, server in [*results.values, *results.reasons])
    cold = (
        (lambda mine, theirs: (mine <= theirs, f"{mine:.2f} s, devpi {theirs:.2f} s"))
        if devpi_ran
        else LEFT_OUT
    )
    return [
        (
            "a cached mirror page at least 0.9x a local channel page's req/s (issue 11)",
            [get("mirror_rps", "repo"), get("mirror_local_rps", "repo")],
            lambda mine, local: (mine >= 0.9 * local, f"{mine / local:.2f}x the local page"),
        ),
        (
            "a cold pip install through the mirror no slower than through devpi's mirror",
            [get("mirror_cold", "repo"), get("mirror_cold", "devpi") if devpi_ran else 0.0],
            cold,
        ),
        (
            "a warm pip install through the mirror within 1.1x of a local channel's",
            [get("mirror_warm", "repo"), get("mirror_local_warm", "repo")],
            lambda mine, local: (mine <= 1.1 * local, f"{mine / local:.2f}x the local channel"),
        ),
        (
            "the big file proxied cold: first byte at most the upstream's + 100 ms",
            [get("mirror_big_ttfb", "repo"), get("mirror_big_ttfb", "nginx")],
            lambda mine, up: (mine <= up + 100, f"{mine:.1f} ms, upstream {up:.1f} ms"),
        ),
        (
            "the big file proxied cold: memory growth under 64 MiB",
            [get("mirror_big_pss", "repo")],
            lambda delta: (delta < 64, f"+{delta:.1f} MiB PSS"),
        ),
    ]


def scaleout_checks(results: Results) -> list[tuple[str, list[float | None], Any]]:
    """Issue 13's targets: an app server on PostgreSQL + S3 against the embedded default, and
    two of them against one."""
    get = results.get
    one = get("scale_rps_one", "repo")
    return [
        (
            "an app server on PostgreSQL + S3 at least 0.8x the embedded default's page req/s"
            " (issue 13)",
            [one, get("scale_rps_embedded", "repo")],
            lambda mine, embedded: (mine >= 0.8 * embedded, f"{mine / embedded:.2f}x embedded"),
        ),
        (
            "two app servers on two cores no slower than one (page req/s, issue 13)",
            [get("scale_rps_two", "repo"), one],
            lambda two, alone: (two >= alone, f"the pair {two / alone:.2f}x A alone"),
        ),
    ]


# Issue 13's figures as ratios, each (what, the embedded default's key, [(setup, key)]).
SCALEOUT_RATIOS = (
    ("project page req/s", "scale_rps_embedded",
     [("A alone", "scale_rps_one"), ("two servers of one worker at once", "scale_rps_two")]),
    ("upload rate (files/s)", "scale_upload_embedded",
     [("A alone", "scale_upload_one"), ("A and B at once", "scale_upload_two")]),
    ("pip install time", "scale_pip_embedded",
     [("through A", "scale_pip_one"), ("through B", "scale_pip_two")]),
)  # fmt: skip


def scaleout_lines(results: Results) -> str:
    """Issue 13's figures as ratios of PostgreSQL + S3 to the embedded default, one line each."""
    lines = []
    for what, base, setups in SCALEOUT_RATIOS:
        ratios = [f"{setup} {_ratio(results.get(key, 'repo'), results.get(base, 'repo'))}"
                  for setup, key in setups]  # fmt: skip
        lines.append(f"- {what}: {', '.join(ratios)} the embedded default's")
    return "\n".join(lines)


def verdict_lines(verdicts: list[Verdict]) -> str:
    marks = {True: "met", False: "MISSED", None: "n/a"}
    return "\n".join(
        f"- [{'skipped' if v.shown == LEFT_OUT else marks[v.met]}] {v.target}: {v.shown}"
        for v in verdicts
    )
