"""A throwaway PostgreSQL cluster for the scale stack (scale-out.md §2.1): initdb into a folder
of its own, a server on 127.0.0.1 at a free port, trust authentication, no fsync; a new empty
database for each app, which makes its schema itself as on a real first start.

initdb refuses to run as root, so as root the server's binaries run as the `postgres` user
(`runuser`), which then owns the folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import psycopg

from repo.db import schema_text
from repo.postgres import Database

from .processes import free_port

USER = "repo"
TEMPLATE = "repo_template"
TIMEOUT = 60  # seconds for initdb, a start or a stop
INSTALL = "apt-get install -y postgresql (Debian: PostgreSQL 15 and its server binaries)"


def binaries() -> Path:
    """The newest installed PostgreSQL's bin folder (Debian's layout); a clear failure when
    there is none."""
    versions = Path("/usr/lib/postgresql").glob("*/bin/initdb")
    found = sorted(
        versions, key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0
    )
    if not found:
        raise RuntimeError(f"The scale stack needs PostgreSQL's server binaries: {INSTALL}")
    return found[-1].parent


class PostgresCluster:
    """One cluster under `work`: start(), fresh_database(label) as often as needed, stop()."""

    def __init__(self, work: Path):
        self.work = work
        self.port = 0
        self.made: list[str] = []  # every database's URL, in the order they were made
        self._admin: psycopg.Connection | None = None
        self._templated = False

    def _run(self, *command: str | Path) -> None:
        as_owner = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        done = subprocess.run([*as_owner, *map(str, command)], capture_output=True, text=True,
                              timeout=TIMEOUT, check=False)  # fmt: skip
        if done.returncode != 0:
            log = self.work / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{command[0]} failed ({done.returncode}): {done.stderr}{tail}")

    def start(self) -> None:
        bin_dir = binaries()
        self.work.mkdir(parents=True)
        if os.getuid() == 0:
            shutil.chown(self.work, "postgres", "postgres")
            # The postgres user must reach the folder: a private temp dir above it is opened
            # for traversal only.
            self.work.parent.chmod(self.work.parent.stat().st_mode | 0o111)
        self._run(bin_dir / "initdb", "-D", self.work / "data", "-U", USER, "-A", "trust",
                  "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")  # fmt: skip
        self.port = free_port()
        settings = {
            "listen_addresses": "127.0.0.1", "port": self.port,
            "unix_socket_directories": self.work, "max_connections": 300, "fsync": "off",
            "synchronous_commit": "off", "full_page_writes": "off",
        }  # fmt: skip
        options = " ".join(f"-c {name}={value}" for name, value in settings.items())
        self._run(bin_dir / "pg_ctl", "-D", self.work / "data", "-l", self.work / "server.log",
                  "-w", "-s", "-t", str(TIMEOUT), "-o", options, "start")  # fmt: skip
        self._admin = psycopg.connect(self.url("postgres"), autocommit=True)

    def url(self, database: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def fresh_database(self, label: str, schema: bool = False) -> str:
        """A new database (its name made from `label`), as a postgresql:// URL: empty, as a
        first start finds it, or with `schema` a copy of one that repo made its schema in
        (a tenth of the time an app takes to make it; the key that signs sessions is still
        made by the app that starts on it)."""
        assert self._admin is not None, "start() the cluster first"
        base = re.sub(r"[^a-z0-9_]", "_", label.lower())[:50] or "db"
        name = f"repo_{len(self.made) + 1}_{base}"
        template = f' TEMPLATE "{self._template()}"' if schema else ""
        self._admin.execute(f'CREATE DATABASE "{name}"{template}')
        self.made.append(self.url(name))
        return self.made[-1]

    def _template(self) -> str:
        """The database fresh_database(schema=True) copies, made on first use by repo itself."""
        if not self._templated:
            self._admin.execute(f'CREATE DATABASE "{TEMPLATE}"')
            Database(self.url(TEMPLATE), threads=1).init(schema_text("schema-postgres.sql"))
            with psycopg.connect(self.url(TEMPLATE), autocommit=True) as connection:
                connection.execute("DELETE FROM server_secrets")
            self._templated = True
        return TEMPLATE

    def drop(self, url: str) -> None:
        """Drop a database made here, ending whatever connections it still has."""
        assert self._admin is not None
        name = url.rsplit("/", 1)[1]
        self._admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if (self.work / "data" / "postmaster.pid").exists():
            self._run(binaries() / "pg_ctl", "-D", self.work / "data", "-m", "immediate", "-w",
                      "-s", "stop")  # fmt: skip
        shutil.rmtree(self.work, ignore_errors=True)
