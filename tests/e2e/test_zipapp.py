"""`make dist` builds one self-contained executable, dist/repo.pyz: it serves, administers and
takes uploads on a Python that has none of repo's dependencies installed. It carries the
embedded default only (no PostgreSQL or S3 libraries: dist/repo is the file that has them, and
test_binary runs it on both stacks), so on the scale stack these tests are not meant to run."""

from __future__ import annotations

import shutil
import sys
import urllib.request
from pathlib import Path

import pytest

from .live import LiveServer, pip_download, run, twine_upload

PYZ = Path(__file__).parents[2] / "dist" / "repo.pyz"
pytestmark = pytest.mark.embedded_only


def bare_python() -> str:
    """A Python outside this venv: Debian's, else the one the venv was made from."""
    return shutil.which("python3", path="/usr/bin") or sys._base_executable


@pytest.fixture(scope="module")
def pyz_server(tmp_path_factory):
    if not PYZ.is_file():
        pytest.fail(f"{PYZ} is missing: `make test` builds it (make dist)")
    home = tmp_path_factory.mktemp("pyz-home")
    settings = {"HOME": str(home), "SHIV_ROOT": str(home / "shiv"), "PATH": "/usr/bin:/bin",
                "PYTHONPATH": "", "VIRTUAL_ENV": ""}  # fmt: skip
    server = LiveServer(home / "data", command=[bare_python(), str(PYZ)], **settings)
    yield server
    server.stop()


def test_the_bare_python_cannot_import_flask():
    result = run([bare_python(), "-c", "import flask"], {"PATH": "/usr/bin:/bin"})
    assert result.returncode != 0, "the zipapp must be tried on a Python without repo's deps"


def test_zipapp_serves_and_takes_uploads(pyz_server, dists, client_env, tmp_path):
    s = pyz_server
    with urllib.request.urlopen(f"{s.url}/healthz", timeout=5) as health:
        assert health.read() == b"ok\n"
    s.cli("user", "create", "alice", "--password", "alice-password")
    s.cli("channel", "create", "zip", "--owner", "alice")
    token = s.cli("token", "create", "alice")
    paths = dists.build("zipped", "1.0")
    upload = twine_upload(f"{s.url}/api/repo/zip", paths, client_env, "__token__", token)
    assert upload.returncode == 0, upload.stdout + upload.stderr
    download = pip_download(f"{s.url}/api/repo/t/{token}/zip/simple", tmp_path, client_env,
                            "zipped")  # fmt: skip
    assert download.returncode == 0, download.stdout + download.stderr
    with urllib.request.urlopen(f"{s.url}/login", timeout=5) as page:
        assert b"<form" in page.read()
