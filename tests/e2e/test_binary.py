"""`make binary` builds dist/repo, one executable with Python inside. It serves, administers
and works with a server where there is no Python: here it runs with an environment that holds
only HOME and PATH (and the server's REPO_* settings, and AWS_* ones on the scale stack), and
its PATH is an empty directory. The binary is the server, the admin commands and the remote
command line; twine and pip, its clients, run from the test venv."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .. import conftest
from .live import (
    LiveServer,
    account_status,
    pip_install,
    run,
    sandboxed_env,
    simple_json,
    twine_upload,
)

ROOT = Path(__file__).parents[2]
BINARY = ROOT / "dist" / "repo"
# PyInstaller analyses and compresses the whole dependency tree: about 40 s on two cores.
BUILD_TIMEOUT = 900
PASSWORD = "alice-password"
README = '# Frozen demo\n\n```python\nprint("from the binary")\n```\n'


def system_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: `make test` installs it (apt-get install {name})")
    return path


@pytest.fixture(scope="module")
def binary() -> Path:
    """dist/repo as `make binary` leaves it: rebuilt when a source is newer, else as it is."""
    built = run([system_tool("make"), "-C", str(ROOT), "binary"], dict(os.environ), BUILD_TIMEOUT)
    assert built.returncode == 0, built.stdout + built.stderr
    return BINARY


def bare_env(home: Path) -> dict[str, str]:
    """All the environment the binary gets: a HOME, and a PATH on which there is nothing."""
    (home / "empty-path").mkdir(parents=True)
    return {"HOME": str(home), "PATH": str(home / "empty-path")}


@pytest.fixture(scope="module")
def server(binary, tmp_path_factory):
    """`dist/repo serve` (two gunicorn workers) on a data dir of its own, on the stack this
    run tests (LiveServer adds its settings)."""
    root = tmp_path_factory.mktemp("binary-server")
    live = LiveServer(root / "data", command=[str(binary)], environ=bare_env(root))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def alice_token(server) -> str:
    """alice, owner of the public channel `frozen`; her write token for it, made by the
    binary's admin commands on the server's data dir."""
    assert server.cli("user", "create", "alice", "--password", PASSWORD) == "Created user 'alice'"
    made = server.cli("channel", "create", "frozen", "--owner", "alice", "--public")
    assert made == "Created public channel 'frozen'"
    server.cli("user", "create", "bob", "--password", "bob-password")
    granted = server.cli("channel", "grant", "frozen", "bob", "--role", "read")
    assert granted == "User 'bob' is now read in channel 'frozen'"
    return server.cli("token", "create", "alice", "--channel", "frozen", "--scope", "write")


@pytest.fixture(scope="module")
def uploaded(server, alice_token, dists, tmp_path_factory) -> list[Path]:
    """frozen-demo 1.0 (wheel and sdist), uploaded by twine through the binary's server."""
    paths = dists.build("frozen-demo", "1.0", readme=README)
    env = sandboxed_env(tmp_path_factory.mktemp("twine-home"))
    result = twine_upload(f"{server.url}/api/repo/frozen", paths, env, "__token__", alice_token)
    assert result.returncode == 0, result.stdout + result.stderr
    return paths


def sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def test_the_binary_is_an_executable_that_links_no_python(binary):
    described = run([system_tool("file"), "--brief", str(binary)], dict(os.environ))
    assert re.match(r"ELF 64-bit LSB (pie )?executable", described.stdout), described.stdout
    linked = run([system_tool("ldd"), str(binary)], dict(os.environ))
    assert linked.returncode == 0 and "libc.so" in linked.stdout, linked.stdout + linked.stderr
    assert "python" not in linked.stdout.lower(), linked.stdout


def test_help_runs_with_nothing_but_home_and_an_empty_path(binary, tmp_path):
    env = bare_env(tmp_path)
    assert not any(Path(env["PATH"]).iterdir())
    result = run([str(binary), "--help"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: repo [OPTIONS] COMMAND [ARGS]...")
    for command in ("serve", "user", "channel", "token", "fsck", "gc", "backup", "login"):
        assert re.search(rf"^  {command}\b", result.stdout, re.MULTILINE), command


def mapped_files(pid: int) -> set[str]:
    """The paths of the files process `pid` has mapped: its executable and shared libraries."""
    fields = (line.split(maxsplit=5) for line in Path(f"/proc/{pid}/maps").read_text().splitlines())
    return {field[5] for field in fields if len(field) == 6 and field[5].startswith("/")}


def test_the_server_runs_the_python_it_carries(server):
    """The binary's bootloader runs Python in one child process (gunicorn's arbiter), from
    what it unpacked into a _MEI temp dir: no library comes from this machine's Pythons."""
    pid = server.process.pid
    (python,) = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    mapped = mapped_files(int(python))
    (libpython,) = [Path(path) for path in mapped if Path(path).name.startswith("libpython3")]
    unpacked = libpython.parent
    assert unpacked.name.startswith("_MEI"), libpython
    pythonic = {path for path in mapped if "python" in path.lower()}
    assert {path for path in pythonic if not Path(path).is_relative_to(unpacked)} == set()
    here = (sys.prefix, sys.base_prefix, "/usr/lib/python3", "/usr/local/lib/python3")
    assert {path for path in mapped if path.startswith(here)} == set()


def test_twine_uploads_and_pip_installs_through_the_binary(server, uploaded, alice_token,
                                                          tmp_path):  # fmt: skip
    page = simple_json(server, "frozen", "frozen-demo", alice_token)
    assert {(f["filename"], f["hashes"]["sha256"]) for f in page["files"]} == {
        (path.name, sha256(path)) for path in uploaded
    }
    target = tmp_path / "installed"
    result = pip_install(sandboxed_env(tmp_path / "home"), target,
                         f"{server.url}/api/repo/frozen/simple/", "frozen-demo")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    installed = (target / "frozen_demo" / "__init__.py").read_text()
    assert installed == "NAME = 'frozen-demo'\nVARIANT = ''\n"


def test_the_server_stores_where_the_stack_says(server, uploaded):
    """SQLite and the blob folder under the data dir, or, with --stack=scale, PostgreSQL and
    S3 through the psycopg and boto3 inside the binary."""
    assert {sha256(path) for path in uploaded} <= server.blobs()
    local = {"database": (server.data_dir / "repo.sqlite3").exists(),
             "blobs": any((server.data_dir / "blobs").glob("??/??/*"))}  # fmt: skip
    assert local == dict.fromkeys(("database", "blobs"), not conftest.STACK.scale)


def test_the_package_page_renders_the_readme_with_the_bundled_renderer(server, uploaded):
    with urllib.request.urlopen(f"{server.url}/channels/frozen/pypi/frozen-demo",
                                timeout=10) as response:  # fmt: skip
        page = response.read().decode()
    assert "Frozen demo" in page
    # Pygments, found by the lexer's name at run time, coloured the code block.
    assert '<span class="nb">print</span>' in page


def test_admin_commands_work_on_the_data_dir(binary, server, uploaded, tmp_path):
    token = server.cli("token", "create", "alice", "--label", "ci")
    assert account_status(server, token) == 200
    (listed,) = [row for row in json.loads(server.cli("token", "list", "alice", "--json"))
                 if row["label"] == "ci"]  # fmt: skip
    assert server.cli("token", "revoke", str(listed["id"])) == f"Revoked token {listed['id']}"
    assert account_status(server, token) == 401
    assert server.cli("fsck").endswith("blobs: 0 missing, 0 corrupt")
    assert server.cli("gc", "--dry-run").splitlines()[-1] == "0 files to remove"
    backup = tmp_path / "backup"
    said = server.cli("backup", str(backup))
    backed_up = re.fullmatch(rf"backed up the database and (\d+) blobs to {backup}", said)
    assert backed_up, said
    # The backup restores into a new data dir (a fresh database and bucket on scale) whole.
    elsewhere = {**bare_env(tmp_path / "restore-home"), **conftest.STACK.environ()}
    restored = tmp_path / "restored"
    result = run([str(binary), "--data-dir", str(restored), "restore", str(backup)], elsewhere)
    assert result.returncode == 0, result.stderr
    count = backed_up[1]
    assert result.stdout == f"restored the database and {count} blobs into {restored}\n"
    checked = run([str(binary), "--data-dir", str(restored), "fsck"], elsewhere)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == f"checked {count} blobs: 0 missing, 0 corrupt\n"


def test_login_whoami_and_upload_against_the_binarys_own_server(binary, server, uploaded, dists,
                                                               tmp_path):  # fmt: skip
    laptop = bare_env(tmp_path / "laptop")

    def repo(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(binary), *args], input=stdin, capture_output=True, text=True,
                              timeout=60, env=laptop,
                              stdin=subprocess.DEVNULL if stdin is None else None)  # fmt: skip

    login = repo("login", server.url, "--username", "alice", "--password-stdin",
                 stdin=PASSWORD + "\n")  # fmt: skip
    assert login.returncode == 0, login.stderr
    # No keyring service in an empty environment: the bundled keyring says so, and the
    # secret goes to the private file.
    assert f"Logged in to {server.url} as alice" in login.stderr
    assert "plain text" in login.stderr
    assert (tmp_path / "laptop" / ".config" / "repo" / "credentials.toml").is_file()
    whoami = repo("whoami")
    assert whoami.returncode == 0 and whoami.stdout.startswith(f"alice on {server.url}\n")
    channels = repo("channel", "list", "--json")
    assert channels.returncode == 0, channels.stderr
    assert [(c["name"], c["my_role"]) for c in json.loads(channels.stdout)] == [("frozen", "owner")]
    wheel, _ = dists.build("frozen-demo", "1.1", readme=README)
    upload = repo("upload", "-c", "frozen", str(wheel))
    assert upload.returncode == 0, upload.stderr
    assert upload.stdout.startswith(f"Uploaded {wheel.name} to frozen (sha256 {sha256(wheel)}")
