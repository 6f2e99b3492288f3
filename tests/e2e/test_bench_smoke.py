"""`python -m bench --smoke` inside the suite, so that the benchmark cannot rot: every
measurement of the harness runs once at a tiny size, offline, against repo and nginx, and
each of repo's figures comes out as a number (bench/README.md). The harness starts its own
PostgreSQL and S3 server for the scale-out rows whatever the stack, so the one run is on the
embedded stack's pass."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import rows
from bench.scale import SMOKE

from .live import sandboxed_env

ROOT = Path(__file__).parents[2]
# The harness stops its servers on SIGTERM; a run this long is stuck, not slow.
TIMEOUT = 300
NUMBER = re.compile(r"-?\d[\d,]*(\.\d+)?")
pytestmark = pytest.mark.embedded_only


@pytest.fixture
def bench_env(tmp_path) -> dict[str, str]:
    """The sandboxed client environment, with the work dir under tmp_path and /usr/sbin on
    PATH: Debian puts nginx there, outside a non-root user's PATH (as `make bench` adds it)."""
    env = sandboxed_env(tmp_path / "home")
    env.update(PATH=f"{env['PATH']}{os.pathsep}/usr/sbin", TMPDIR=str(tmp_path))
    for command in ("nginx", "wrk", "htpasswd"):
        if shutil.which(command, path=env["PATH"]) is None:
            pytest.fail(f"{command} is not installed: `make test` installs it (BENCH_PACKAGES)")
    return env


def run_smoke(output: Path, log: Path, env: dict[str, str]) -> int:
    """The smoke run in a process group of its own, its output in `log`; past the timeout
    the group gets SIGTERM (and SIGKILL if that is not enough), so no server outlives it."""
    command = [sys.executable, "-m", "bench", "--smoke", "--output", str(output)]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            return process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    pytest.fail(f"the smoke run took over {TIMEOUT} s:\n{log.read_text()[-3000:]}")


def table(text: str) -> dict[str, dict[str, str]]:
    """The results table as {metric label without its arrow: {column: cell}}."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    head, *body = ([cell.strip() for cell in line.strip("|").split("|")] for line in lines)
    return {cells[0].rsplit(" (", 1)[0]: dict(zip(head, cells, strict=True)) for cells in body[1:]}


def test_smoke_benchmark_measures_every_figure_of_repo(tmp_path, bench_env):
    output, log = tmp_path / "results.md", tmp_path / "bench.log"
    status = run_smoke(output, log, bench_env)
    assert status == 0, log.read_text()[-3000:]
    text = output.read_text()
    measured = table(text)
    for row in rows(SMOKE):
        assert row.label in measured, f"no row {row.label!r} in:\n{text}"
        cell = measured[row.label]["repo"]
        assert NUMBER.fullmatch(cell), f"{row.key}: repo shows {cell!r}"
    # nginx is in the smoke run too (the targets are ratios to it): none of its figures and
    # none of the targets may be missing either.
    assert [line for line in text.splitlines() if "n/a" in line] == [], text
