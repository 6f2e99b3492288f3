"""The storage stacks the suite runs on: `embedded` (SQLite and a blob folder under the data
dir, what `make serve` runs) and `scale` (a throwaway PostgreSQL cluster and an S3 protocol
server, both started here on 127.0.0.1). `pytest --stack=scale` runs the same tests on the
second; each test gets a database and a bucket of its own.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from .postgres import PostgresCluster
from .s3 import S3Server

STACKS = ("embedded", "scale")


class Stack:
    """What a test's app or live server is configured with, by stack. The servers of the
    scale stack start on first use and stop at the end of the session."""

    def __init__(self, name: str, work: Path):
        self.name = name
        self._work = work
        self._postgres: PostgresCluster | None = None
        self._s3: S3Server | None = None
        self._names = itertools.count(1)

    @property
    def scale(self) -> bool:
        return self.name == "scale"

    @property
    def postgres(self) -> PostgresCluster:
        if self._postgres is None:
            self._postgres = PostgresCluster(self._work / "postgres")
            self._postgres.start()
        return self._postgres

    @property
    def s3(self) -> S3Server:
        if self._s3 is None:
            self._s3 = S3Server()
            self._s3.start()
            # boto3 reads its settings from the environment: the in-process apps and every
            # server a test starts (which inherit os.environ) talk to this one.
            os.environ.update(self._s3.environ)
        return self._s3

    def config(self) -> dict:
        """Config keys for a fresh app: a new database and bucket on `scale`, none on
        `embedded` (the app then uses its data dir)."""
        if not self.scale:
            return {}
        label = f"t{next(self._names)}"
        return {
            "DATABASE_URL": self.postgres.fresh_database(label, schema=True),
            "BLOB_URL": self.s3.fresh_bucket(label),
        }

    def environ(self) -> dict[str, str]:
        """The same as REPO_* variables, for a live server (and the AWS_* ones it needs)."""
        config = self.config()
        if not config:
            return {}
        return {
            "REPO_DATABASE_URL": config["DATABASE_URL"],
            "REPO_BLOB_URL": config["BLOB_URL"],
            **self.s3.environ,
        }

    def stop(self) -> None:
        if self._postgres is not None:
            self._postgres.stop()
        if self._s3 is not None:
            self._s3.stop()
