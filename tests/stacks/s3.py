"""moto's S3 server, the scale stack's object store (scale-out.md §1: the one server here with
multipart, visibility only at Complete, Range, presigned URLs and their overrides). A
subprocess on 127.0.0.1 and a port the OS picks: its CPU is not the test process's."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

from . import processes

ACCESS_KEY = "moto-test-access"
SECRET_KEY = "moto-test-secret"
REGION = "us-east-1"
DEADLINE = 30
_LISTENING = re.compile(r"Running on (http://127\.0\.0\.1:\d+)")


class S3Server:
    """`moto_server` for the session; every fresh_bucket() a bucket of its own."""

    access_key, secret_key = ACCESS_KEY, SECRET_KEY

    def __init__(self, work: Path | None = None):
        self.work = work or Path(tempfile.mkdtemp(prefix="repo-moto-"))
        self.process: subprocess.Popen | None = None
        self.url = ""
        self._numbers = itertools.count(1)

    @property
    def environ(self) -> dict[str, str]:
        """boto3's settings for this server, as an app or a live server reads them."""
        return {"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": REGION}  # fmt: skip

    def start(self) -> None:
        command = shutil.which("moto_server", path=str(Path(sys.executable).parent))
        if command is None:
            raise RuntimeError("moto_server is not installed: `make test` installs it (.[test])")
        self.work.mkdir(parents=True, exist_ok=True)
        log = self.work / "moto.log"
        self._log = open(log, "wb")  # noqa: SIM115 - open for the server's lifetime
        self.process = subprocess.Popen(
            [command, "--host", "127.0.0.1", "--port", "0"],
            env={"PATH": "/usr/bin:/bin", "TMPDIR": str(self.work)},
            stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited: {log.read_text(errors='replace')}")
            listening = _LISTENING.search(log.read_text(errors="replace"))
            if listening:
                self.url = listening.group(1)
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"moto_server did not say where it listens in {DEADLINE}s")

    def client(self):
        """A boto3 client of this server, for a test that looks at the bucket itself."""
        return boto3.client("s3", endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key)  # fmt: skip

    def fresh_bucket(self, label: str) -> str:
        """`s3://<a new bucket>/blobs`, the bucket made now and named after `label`."""
        readable = re.sub(r"[^a-z0-9-]+", "-", label.lower()).strip("-")[:40]
        bucket = f"repo-{next(self._numbers)}-{readable}".rstrip("-")
        self.client().create_bucket(Bucket=bucket)
        return f"s3://{bucket}/blobs"

    def stop(self) -> None:
        if self.process is not None:
            processes.stop(self.process)
            self.process = None
            self._log.close()
