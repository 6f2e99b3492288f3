"""Server memory from /proc: PSS summed over a process tree (shared pages counted once, so a
master and its forked workers add up to what they really take) and RSS, sampled while a
client runs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024


@dataclass(frozen=True)
class Usage:
    """Memory of a process tree in MiB: PSS (proportional) and RSS (resident), summed."""

    pss: float
    rss: float


def usage(pids: list[int]) -> Usage:
    """The summed PSS and RSS of `pids` from /proc/PID/smaps_rollup."""
    totals = {"Pss:": 0, "Rss:": 0}
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:  # the process ended meanwhile
            continue
        for line in text.splitlines():
            key = line.split(" ", 1)[0]
            if key in totals:
                totals[key] += int(line.split()[1]) * 1024
    return Usage(totals["Pss:"] / MB, totals["Rss:"] / MB)


class PeakSampler:
    """Samples `usage(pids())` every `interval` seconds in a thread, keeping the peaks."""

    def __init__(self, pids: Callable[[], list[int]], interval: float = 0.1):
        self._pids = pids
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.peak = Usage(0.0, 0.0)
        self.samples = 0

    def _run(self) -> None:
        while not self._stop.is_set():
            now = usage(self._pids())
            self.peak = Usage(max(self.peak.pss, now.pss), max(self.peak.rss, now.rss))
            self.samples += 1
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(5)
