"""The live server, the sandboxed client environment and the locally built distributions
that the end-to-end tests drive."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import psycopg
import pytest

from repo.postgres import translate

from .. import conftest

BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "admin-password-for-tests"
STARTUP_DEADLINE = 30


def tool(name: str) -> str:
    """The path of a client the tests drive; a missing one fails, it is never skipped."""
    path = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: `make test` installs it (pip install -e '.[test]')")
    return path


class LiveServer:
    """`repo serve` on 127.0.0.1 with a port the OS chose, on a data dir of its own."""

    def __init__(self, data_dir: Path, command: list[str] | None = None, workers: int = 2,
                 environ: dict[str, str] | None = None, **settings: str):  # fmt: skip
        """`command` runs `repo` (the installed script unless given) with `workers` processes
        in `environ` (os.environ unless given); `settings` are REPO_* variables; failed-auth
        throttling is off unless set."""
        self.command = command or [tool("repo")]
        self.data_dir = data_dir
        self.log_path = data_dir.parent / f"{data_dir.name}.log"
        quiet = {"REPO_DATA_DIR": "", "REPO_AUTH_FAILURE_LIMIT": "0"}
        # On `--stack=scale`, a database and a bucket of its own unless the test shares some.
        stack = {} if "REPO_DATABASE_URL" in settings else conftest.STACK.environ()
        env = self.env = {**(os.environ if environ is None else environ),
                          "REPO_ADMIN_PASSWORD": ADMIN_PASSWORD, **quiet, **stack,
                          **settings}  # fmt: skip
        self._log = open(self.log_path, "w+b")  # noqa: SIM115 - open for the server's lifetime
        self.process = subprocess.Popen(
            [*self.command, "--data-dir", str(data_dir), "serve", "--bind", "127.0.0.1:0",
             "--workers", str(workers)],
            stdout=self._log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        self.url = self._wait_until_listening()

    def _wait_until_listening(self) -> str:
        deadline = time.monotonic() + STARTUP_DEADLINE
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"server exited:\n{self.log()}"
            match = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", self.log())
            if match:
                try:
                    urllib.request.urlopen(match[1] + "/healthz", timeout=5).read()
                    return match[1]
                except OSError:
                    pass
            time.sleep(0.1)
        raise AssertionError(f"server did not start in {STARTUP_DEADLINE}s:\n{self.log()}")

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cli(self, *args: str) -> str:
        """Run the `repo` command on this server's data dir; return its stdout."""
        result = subprocess.run(
            [*self.command, "--data-dir", str(self.data_dir), *args],
            capture_output=True, text=True, timeout=60, env=self.env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def query(self, sql: str, *params) -> list[tuple]:
        """Rows of the server's database (SQLite's `?` placeholders on either engine)."""
        url = self.env.get("REPO_DATABASE_URL")
        if url:
            with psycopg.connect(url, autocommit=True) as connection:
                cursor = connection.execute(translate(sql), params)
                # As sqlite3's: a statement that returns no rows (an UPDATE) answers none.
                return [tuple(row) for row in cursor] if cursor.description else []
        with sqlite3.connect(self.data_dir / "repo.sqlite3") as connection:
            return connection.execute(sql, params).fetchall()

    @property
    def storage(self) -> dict[str, str]:
        """The settings that start another server on this one's database and blobs, beside
        its data dir: none on the embedded stack, where the data dir holds both."""
        shared = ("REPO_DATABASE_URL", "REPO_BLOB_URL")
        return {name: value for name, value in self.env.items()
                if name in shared or name.startswith("AWS_")}  # fmt: skip

    def blobs(self) -> set[str]:
        """The names of the blobs in the server's store (its folder, or its bucket)."""
        url = self.env.get("REPO_BLOB_URL")
        if url:
            return set(stored_objects(url, self.env))
        root = self.data_dir / "blobs"
        return {p.name for p in root.glob("??/??/*")}

    def plant(self, sha256: str, data: bytes) -> str:
        """Put `data` into the server's store under the name `sha256`, behind the server's
        back (no row names it); where it is, as `repo gc` prints it."""
        url = self.env.get("REPO_BLOB_URL")
        relative = f"{sha256[:2]}/{sha256[2:4]}/{sha256}"
        if url:
            bucket, _, prefix = url.removeprefix("s3://").partition("/")
            key = f"{prefix.strip('/')}/{relative}".lstrip("/")
            s3_client(self.env).put_object(Bucket=bucket, Key=key, Body=data)
            return f"s3://{bucket}/{key}"
        path = self.data_dir / "blobs" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return str(path)

    def pending(self) -> list[Path]:
        """The temp files of uploads in progress on this host (none once they are done)."""
        folders = [self.data_dir / "blobs" / "tmp", self.data_dir / "blobcache" / "tmp"]
        return [path for folder in folders if folder.is_dir() for path in folder.iterdir()]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._log.close()


def s3_client(env: dict[str, str]):
    """A boto3 S3 client in `env`'s AWS settings (a server's), for a test's own look."""
    return boto3.client(
        "s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )  # fmt: skip


def stored_objects(url: str, env: dict[str, str]) -> dict[str, int]:
    """Size by name of the objects under an s3://BUCKET/PREFIX, asked with boto3 in `env`'s
    AWS settings."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    pages = s3_client(env).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {item["Key"].rsplit("/", 1)[-1]: item["Size"]
            for page in pages for item in page.get("Contents", [])}  # fmt: skip


def account_status(server: LiveServer, token: str) -> int:
    """The status of GET /api/account with `token` as a Bearer token: 200 while it works."""
    request = urllib.request.Request(f"{server.url}/api/account",
                                     headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def sandboxed_env(home: Path) -> dict[str, str]:
    """An environment in which pip, uv and twine see no user config and write under `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "TWINE_"))}
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local/share"), PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", UV_NO_CONFIG="1",
        UV_CACHE_DIR=str(home / "uv-cache"), UV_PYTHON_DOWNLOADS="never", NO_COLOR="1",
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
    )  # fmt: skip
    return env


def twine_upload(url: str, paths, env: dict[str, str], user: str, password: str):
    """`twine upload` of `paths` to `url`, never prompting."""
    args = ["upload", "--non-interactive", "--disable-progress-bar", "--repository-url", url]
    return run([tool("twine"), *args, *map(str, paths), "-u", user, "-p", password], env)


def uv_publish(url: str, paths, env: dict[str, str], user: str, password: str):
    """`uv publish` of `paths` to `url`."""
    return run([tool("uv"), "publish", "--publish-url", url, "--username", user,
                "--password", password, *map(str, paths)], env)  # fmt: skip


def pip_install(env: dict[str, str], target: Path, index_url: str, *requirements: str):
    """`pip install` of `requirements` into `target` from `index_url` only, without cache."""
    return run([tool("python"), "-m", "pip", "install", "--no-cache-dir", "--target",
                str(target), "--index-url", index_url, *requirements], env)  # fmt: skip


def uv_install(env: dict[str, str], target: Path, index_url: str, *requirements: str):
    """`uv pip install` of `requirements` into `target` from `index_url` only, without cache."""
    return run([tool("uv"), "pip", "install", "--no-cache", "--python", tool("python"),
                "--target", str(target), "--index-url", index_url, *requirements], env)  # fmt: skip


def simple_json(server: LiveServer, channel: str, project: str, token: str) -> dict:
    """The PEP 691 JSON project page of `project` in `channel`, read with a path token."""
    request = urllib.request.Request(
        f"{server.url}/api/repo/t/{token}/{channel}/simple/{project}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def pip_download(index_url: str, dest: Path, env: dict[str, str], *requirements: str):
    """`pip download` without dependencies or cache into `dest`."""
    return run([tool("python"), "-m", "pip", "download", "--no-deps", "--no-cache-dir",
                "--dest", str(dest), "--index-url", index_url, *requirements], env)  # fmt: skip


def run(args: list[str], env: dict[str, str], timeout: int = 120, cwd: Path | None = None):
    """Run a client; never through a shell."""
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)


class Dists:
    """Builds small real projects with setuptools (`python -m build --no-isolation`), once."""

    def __init__(self, root: Path):
        self.root = root
        self.built: dict[tuple, list[Path]] = {}

    def build(self, name: str, version: str, dependencies: tuple[str, ...] = (),
              requires_python: str | None = None, readme: str = "", variant: str = "",
              summary: str = ""):  # fmt: skip
        """[wheel, sdist] of the project; `variant` changes the content, not the filenames;
        `summary` replaces "Test project NAME"."""
        key = (name, version, dependencies, requires_python, len(readme), variant, summary)
        if key not in self.built:
            self.built[key] = self._build(key, name, version, dependencies, requires_python,
                                          readme, variant, summary)  # fmt: skip
        return self.built[key]

    def _build(self, key, name, version, dependencies, requires_python, readme, variant,
               summary):  # fmt: skip
        source = self.root / f"src-{len(self.built)}"
        module = re.sub(r"[-_.]+", "_", name).lower()
        (source / module).mkdir(parents=True)
        (source / module / "__init__.py").write_text(f"NAME = {name!r}\nVARIANT = {variant!r}\n")
        (source / "README.md").write_text(readme or f"# {name}\n")
        description = json.dumps(summary or f"Test project {name}")  # a TOML basic string
        project = textwrap.dedent(f"""\
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"
            [project]
            name = "{name}"
            version = "{version}"
            description = {description}
            readme = "README.md"
            dependencies = {list(dependencies)!r}
            """)
        if requires_python:
            project += f'requires-python = "{requires_python}"\n'
        project += f'[tool.setuptools]\npackages = ["{module}"]\n'
        (source / "pyproject.toml").write_text(project)
        return build_dists(source)


def build_dists(source: Path, files: dict[str, str] | None = None) -> list[Path]:
    """Write `files` (path under `source` -> text), then build `source` offline with
    `python -m build --no-isolation` and the backend its pyproject.toml names: [wheel, sdist]."""
    for name, text in (files or {}).items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text)
    out = source / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return [next(out.glob("*.whl")), next(out.glob("*.tar.gz"))]


FIXTURES = Path(__file__).parents[1] / "fixtures" / "r"
R_TIMEOUT = 300


def rscript(code: str, env: dict[str, str], timeout: int = R_TIMEOUT):
    """Run R code with `Rscript -e`; R is a real dependency, never skipped."""
    return run([tool("Rscript"), "--vanilla", "-e", code], env, timeout)


def r_build(out: Path) -> dict[str, Path]:
    """`R CMD build` every fixture package into `out`, and `R CMD INSTALL --build` the binary
    of abc 2.1 and of abcc; return the archives by file name."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOME": str(out)}
    for source in sorted(FIXTURES.iterdir()):
        if source.is_dir():
            built = run([tool("R"), "CMD", "build", "--no-manual", "--no-build-vignettes",
                         str(source)], env, R_TIMEOUT, cwd=out)  # fmt: skip
            assert built.returncode == 0, built.stdout + built.stderr
    library = out / "lib"
    library.mkdir()
    for tarball in ("abc_2.1.tar.gz", "abcc_0.1-1.tar.gz"):
        binary = run([tool("R"), "CMD", "INSTALL", "--build", "-l", str(library), tarball],
                     env, R_TIMEOUT, cwd=out)  # fmt: skip
        assert binary.returncode == 0, binary.stdout + binary.stderr
    return {p.name: p for p in out.iterdir() if p.is_file()}
