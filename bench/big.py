"""repo's memory while one large file goes up and comes back down: sampled every 100 ms, it
must stay flat, since an upload streams to disk and a download is sent from the file. The
upload's rate through gunicorn is a target too (issue 10: at least 300 MB/s for 1 GiB)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from . import measure
from .memory import PeakSampler, usage
from .servers import RepoServer

TIMEOUT = 900
CHUNK = 1024 * 1024


def upload_and_download(server: RepoServer, path: Path, project: str) -> dict[str, float]:
    """Upload `path` (a wheel) with curl as twine would, then download it; the PSS growth
    over the idle server, the peak RSS, and both rates."""
    fields = {":action": "file_upload", "protocol_version": "1", **_twine_digests(path),
              "name": project, "version": "1.0", "filetype": "bdist_wheel", "pyversion": "py3",
              "metadata_version": "2.1"}  # fmt: skip
    form = [arg for key, value in fields.items() for arg in ("-F", f"{key}={value}")]
    form += ["-F", f"content=@{path};type=application/octet-stream"]
    idle = usage(server.pids())
    with PeakSampler(server.pids) as up:
        upload = _curl(server, [*form, "--write-out", "%{speed_upload}", server.upload_url])
    url = measure.file_url(server, project, path.name)
    with PeakSampler(server.pids) as down:
        download = _curl(server, ["--write-out", "%{speed_download}", url])
    return {
        "big_pss_delta": max(up.peak.pss, down.peak.pss) - idle.pss,
        "big_rss_peak": max(up.peak.rss, down.peak.rss),
        "big_upload": upload / 1e6,
        "big_download": download / 1e6,
    }


def _twine_digests(path: Path) -> dict[str, str]:
    """The digest fields twine 7 sends (sha256 and blake2b-256, no md5), in one read."""
    sha256, blake2 = hashlib.sha256(), hashlib.blake2b(digest_size=32)
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            sha256.update(chunk)
            blake2.update(chunk)
    return {"sha256_digest": sha256.hexdigest(), "blake2_256_digest": blake2.hexdigest()}


def _curl(server: RepoServer, args: list[str]) -> float:
    """curl with the server's credentials, the answer discarded; the --write-out figure."""
    command = ["curl", "--silent", "--show-error", "--fail", "--output", "/dev/null"]
    command += ["-H", f"Authorization: {server.authorization}", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    if result.returncode != 0:
        raise RuntimeError(f"curl: {result.stderr.strip()}")
    return float(result.stdout)
