"""nanio, a disk-backed S3 protocol server that checks SigV4 signatures on presigned URLs
(moto does not): where redirected downloads are tested, so a client that mangled the URL
would fail as it would against a real store (scale-out.md §1); and the benchmark's store."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .processes import free_port
from .s3 import DEADLINE, REGION, S3Server


class NanioServer(S3Server):
    """`nanio serve` on 127.0.0.1 with its data under `work`; buckets as S3Server makes them."""

    access_key, secret_key = "nanio-test-access", "nanio-test-secret-key-0123456789"

    def start(self) -> None:
        command = shutil.which("nanio", path=str(Path(sys.executable).parent))
        if command is None:
            raise RuntimeError("nanio is not installed: `make test` installs it (.[test])")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.work.mkdir(parents=True, exist_ok=True)
        self._log = open(self.work / "nanio.log", "wb")  # noqa: SIM115 - the server's lifetime
        self.process = subprocess.Popen(
            [command, "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir",
             str(self.work / "data"), "--region", REGION, "--no-access-log"],
            env={"PATH": "/usr/bin:/bin", "NANIO_ACCESS_KEY": self.access_key,
                 "NANIO_SECRET_KEY": self.secret_key},
            stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nanio exited: {(self.work / 'nanio.log').read_text()}")
            try:
                urllib.request.urlopen(self.url, timeout=1).close()
                return
            except urllib.error.HTTPError as answer:
                answer.close()
                return  # it answers (403 to an unsigned request): it is up
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"nanio did not answer in {DEADLINE}s")
