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
import urllib.request
from pathlib import Path

import pytest

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
                 **settings: str):  # fmt: skip
        """`command` runs `repo` (the installed script unless given) with `workers` processes;
        `settings` are REPO_* variables; failed-auth throttling is off unless set."""
        self.command = command or [tool("repo")]
        self.data_dir = data_dir
        self.log_path = data_dir.parent / f"{data_dir.name}.log"
        quiet = {"REPO_DATA_DIR": "", "REPO_AUTH_FAILURE_LIMIT": "0"}
        env = self.env = {**os.environ, "REPO_ADMIN_PASSWORD": ADMIN_PASSWORD, **quiet,
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
        with sqlite3.connect(self.data_dir / "repo.sqlite3") as connection:
            return connection.execute(sql, params).fetchall()

    def blobs(self) -> set[str]:
        root = self.data_dir / "blobs"
        return {p.name for p in root.glob("??/??/*")}

    def pending(self) -> list[str]:
        return os.listdir(self.data_dir / "blobs" / "tmp")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._log.close()


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
