"""What a run was measured on: the machine and the version of every program in the table,
written beside the figures so that two runs can be compared honestly."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from .servers import tool

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = "?"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    return f"{os.cpu_count()} cores ({cpu}), {memory} RAM, {platform.system()} {platform.release()}"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine shows here."""
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _output(args: list[str]) -> str:
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    return (result.stdout + result.stderr).strip()


def _first(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    return match[1] if match else "not found"


def _installed(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def versions(peers: dict[str, str]) -> dict[str, str]:
    """Every program the figures depend on; `peers` adds the versions found in their venvs."""
    revision = _output(["git", "rev-parse", "--short", "HEAD"])
    dirty = _output(["git", "status", "--porcelain", "--untracked-files=no"])
    return {
        "python": platform.python_version(),
        "repo": f"{revision}{' (with uncommitted changes)' if dirty else ''}",
        "gunicorn": _installed("gunicorn"),
        "flask": _installed("flask"),
        **peers,
        "nginx": _first(r"nginx/(\S+)", _output(["nginx", "-v"])),
        "pip": _installed("pip"),
        "uv": _first(r"uv (\S+)", _output([tool("uv"), "--version"])),
        "twine": _installed("twine"),
        "wrk": _first(r"wrk (\S+)", _output(["wrk", "--version"])),
        "curl": _first(r"curl (\S+)", _output(["curl", "--version"])),
        "R": _first(r"R version (\S+)", _output(["R", "--version"])),
        "sqlite": sqlite3.sqlite_version,
    }
