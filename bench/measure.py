"""The clients that measure: wrk for request rates and latencies, twine for uploads, pip and
uv for installs, curl for downloads. Every run is bounded in time."""

from __future__ import annotations

import html
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .servers import Service, tool

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
TWINE_TIMEOUT = 900
INSTALL_TIMEOUT = 600


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run saw; latencies in milliseconds."""

    rps: float
    p50: float
    p99: float
    requests: int


def wrk(
    server: Service, paths: list[str], connections: int, seconds: int, log: Path,
    headers: tuple[str, ...] = (),
) -> WrkResult:  # fmt: skip
    """wrk `--latency` with the server's credentials over `paths`, drawn at random per request
    by a Lua script; one thread per connection up to 2 (the issue's "2 threads 16
    connections"). Its output is kept in `log`; any failed request fails the run."""
    script = log.with_suffix(".lua")
    quoted = ",\n".join(f'  "{path}"' for path in paths)
    script.write_text(
        f"local paths = {{\n{quoted}\n}}\n"
        "math.randomseed(42)\n"
        "request = function()\n"
        "  return wrk.format(nil, paths[math.random(#paths)])\n"
        "end\n"
    )
    args = ["wrk", "-t", str(min(2, connections)), "-c", str(connections), "-d", f"{seconds}s"]
    args += ["--latency", "--timeout", "10s", "-H", f"Authorization: {server.authorization}"]
    args += [arg for header in headers for arg in ("-H", header)]
    result = subprocess.run(
        [*args, "-s", str(script), server.url], capture_output=True, text=True, timeout=seconds + 60
    )
    out = result.stdout
    log.write_text(out + result.stderr)
    if result.returncode != 0 or "Requests/sec" not in out:
        raise RuntimeError(f"wrk failed: {(out + result.stderr).strip()[-300:]}")
    run = WrkResult(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
        p50=_latency(out, "50%"),
        p99=_latency(out, "99%"),
        requests=int(re.search(r"(\d+) requests in", out)[1]),
    )
    failures = _failures(out)
    if failures:
        raise RuntimeError(f"{failures} of {run.requests} requests failed (see {log.name})")
    return run


def _latency(out: str, percentile: str) -> float:
    match = re.search(rf"^\s+{re.escape(percentile)}\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    return float(match[1]) * _UNITS[match[2]]


def _failures(out: str) -> int:
    """Non-2xx/3xx answers plus socket errors: a run with any is not a result."""
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return (int(non_2xx[1]) if non_2xx else 0) + (sum(map(int, errors.groups())) if errors else 0)


def twine_upload(server: Service, paths: list[Path], log: Path) -> float:
    """Upload `paths` with one `twine upload` call; return its wall time in seconds."""
    args = [tool("twine"), "upload", "--non-interactive", "--disable-progress-bar"]
    args += ["--repository-url", server.upload_url, "-u", server.user, "-p", server.password]
    started = time.monotonic()
    with open(log, "ab") as out:
        result = subprocess.run(
            [*args, *map(str, paths)], stdout=out, stderr=subprocess.STDOUT, timeout=TWINE_TIMEOUT
        )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-400:]
        raise RuntimeError(f"twine upload failed: {' '.join(tail.split())}")
    return elapsed


def install(client: str, index_url: str, requirements: list[str], target: Path) -> float:
    """`pip install` or `uv pip install` into an empty --target with no cache, no
    configuration but the index; seconds."""
    shutil.rmtree(target, ignore_errors=True)
    if client == "pip":
        args = [sys.executable, "-m", "pip", "install", "--no-cache-dir"]
        args += ["--disable-pip-version-check"]
    else:
        args = [tool("uv"), "pip", "install", "--no-cache", "--python", sys.executable]
    args += ["--quiet", "--target", str(target), "--index-url", index_url, *requirements]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(target.parent), "PIP_CONFIG_FILE": "/dev/null"}
    env["UV_NO_CONFIG"] = "1"
    started = time.monotonic()
    result = subprocess.run(args, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, env=env)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"{client} install failed: {result.stderr.strip()[-300:]}")
    shutil.rmtree(target)
    return elapsed


def median_of(runs: int, measure: Callable[[], float]) -> float:
    """The median of `runs` calls of `measure()`."""
    return statistics.median(measure() for _ in range(runs))


def download_mbps(server: Service, url: str) -> float:
    """One download with curl to /dev/null; MB/s (10^6 bytes) as curl measured it."""
    args = ["curl", "--silent", "--show-error", "--fail", "--output", "/dev/null"]
    args += ["--user", f"{server.user}:{server.password}", "--write-out", "%{speed_download}"]
    result = subprocess.run([*args, url], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"curl {url}: {result.stderr.strip()}")
    return float(result.stdout) / 1e6


def fetch(url: str, authorization: str, accept: str = "") -> bytes:
    """GET with the benchmark's credentials (and an Accept header if given)."""
    request = urllib.request.Request(url)
    request.add_header("Authorization", authorization)
    if accept:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


def file_url(server: Service, project: str, filename: str) -> str:
    """The absolute URL the project's simple page links `filename` at (every server lays
    files out its own way)."""
    page_url = server.url + server.project_path(project)
    page = fetch(page_url, server.authorization).decode()
    for href in re.findall(r'href="([^"]+)"', page):
        link = html.unescape(href).split("#")[0]
        if link.rstrip("/").rsplit("/", 1)[-1] == filename:
            return urllib.parse.urljoin(page_url, link)
    raise RuntimeError(f"{filename} is not linked from {page_url}")
