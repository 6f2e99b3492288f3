"""How big and how long: the full run the issue's targets are stated at, a quick one for
iterating on the harness (`make bench BENCH_ARGS=--quick`), and a smoke run that `make test`
makes so that the harness cannot rot (`python -m bench --smoke`)."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class Scale:
    """Every size and duration of one run; each load loop is bounded by these."""

    projects: int  # synthetic Python projects, one wheel each
    sdists: int  # of them also with an sdist (the issue: 6133 files for 5000 projects)
    window: int  # the first and last this many projects are timed for the flat-rate target
    r_packages: int  # synthetic R source packages in one channel
    big_mib: int  # the file uploaded and downloaded while memory is sampled
    download_mib: int  # the file whose download rate is compared
    wrk_seconds: int  # each wrk run
    latency_seconds: int  # the one-connection latency run
    installs: int  # pip and uv installs per server (the median is shown)
    downloads: int  # downloads per server (the median is shown)
    r_visible: int  # R uploads timed until they show in PACKAGES (the median is shown)
    mirror_rounds: int  # turns of the mirrors' installs and page runs (the median is shown)
    scaleout_files: int  # wheels per timed upload of the scale-out rows (issue 13)
    scaleout_seconds: int  # each wrk turn of the scale-out page rows
    scaleout_rounds: int  # turns of the scale-out uploads and page runs (the median)
    real: bool  # pip and uv install the real projects from PyPI; else the synthetic ones


FULL = Scale(
    projects=5000,
    sdists=1133,
    window=1000,
    r_packages=20_000,
    big_mib=1024,
    download_mib=50,
    wrk_seconds=10,
    latency_seconds=5,
    installs=3,
    downloads=5,
    r_visible=3,
    mirror_rounds=3,
    scaleout_files=300,
    scaleout_seconds=5,
    scaleout_rounds=3,
    real=True,
)
QUICK = Scale(
    projects=500,
    sdists=113,
    window=100,
    r_packages=2000,
    big_mib=100,
    download_mib=50,
    wrk_seconds=4,
    latency_seconds=2,
    installs=1,
    downloads=3,
    r_visible=1,
    mirror_rounds=3,
    scaleout_files=50,
    scaleout_seconds=2,
    scaleout_rounds=3,
    real=True,
)
# Every measurement once, at the smallest size that still runs it for real, in well under a
# minute and offline (a test must not need PyPI): two windows so that the first and the last
# differ, files of a few MiB, one-second wrk runs.
SMOKE = Scale(
    projects=4,
    sdists=1,
    window=2,
    r_packages=20,
    big_mib=8,
    download_mib=2,
    wrk_seconds=1,
    latency_seconds=1,
    installs=1,
    downloads=1,
    r_visible=1,
    mirror_rounds=1,
    scaleout_files=2,
    scaleout_seconds=1,
    scaleout_rounds=1,
    real=False,
)
