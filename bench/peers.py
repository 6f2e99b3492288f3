"""The peers `repo` is compared with, installed from PyPI into throwaway venvs: pypiserver
(htpasswd) and devpi-server (a user, a private index, devpi's login token)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from .servers import PASSWORD, USER, Service, free_port

# The versions the dry run measured; pinned so that runs compare.
PYPISERVER = ("pypiserver==2.4.2", "passlib==1.7.4", "waitress")
DEVPI = ("devpi-server==6.20.3",)
INSTALL_TIMEOUT = 600


def venv(root: Path, packages: tuple[str, ...]) -> Path:
    """A fresh venv with `packages`; returns its bin directory."""
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=120)
    pip = [str(root / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    pip += ["--disable-pip-version-check", *packages]
    result = subprocess.run(pip, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    if result.returncode != 0:
        # pip's last line says why ("ERROR: No matching distribution found for ...").
        lines = result.stderr.strip().splitlines() or ["no output"]
        raise RuntimeError(f"pip install {packages[0]}: {lines[-1].removeprefix('ERROR: ')}")
    return root / "bin"


def version(bin_dir: Path, distribution: str) -> str:
    """The installed version of `distribution` in a venv."""
    code = f"import importlib.metadata as m; print(m.version({distribution!r}))"
    result = subprocess.run(
        [str(bin_dir / "python"), "-c", code], capture_output=True, text=True, timeout=60
    )
    return result.stdout.strip() or "?"


def htpasswd(path: Path) -> Path:
    """The Apache password file nginx and pypiserver check: {SHA}, the cheapest scheme both
    read, so that neither pays for a slow hash on every request."""
    command = ["htpasswd", "-b", "-s", "-c", str(path), USER, PASSWORD]
    subprocess.run(command, check=True, capture_output=True, timeout=30)
    return path


class PypiServer(Service):
    """pypiserver 2.4 with its default backend (the package directory, scanned per request),
    served by waitress, authenticating uploads, downloads and listings."""

    name = "pypiserver"

    def __init__(self, workdir: Path, password_file: Path):
        super().__init__(workdir)
        self.packages = self.workdir / "packages"
        self.password_file = password_file
        self.versions: dict[str, str] = {}

    def start(self) -> None:
        bin_dir = venv(self.workdir / "venv", PYPISERVER)
        self.versions = {"pypiserver": version(bin_dir, "pypiserver")}
        self.packages.mkdir()
        port = free_port()
        command = [str(bin_dir / "pypi-server"), "run", "-p", str(port), "-i", "127.0.0.1"]
        command += ["-P", str(self.password_file), "-a", "update,download,list"]
        self.spawn([*command, "--disable-fallback", "--log-stream", "stdout", str(self.packages)])
        self.url = f"http://127.0.0.1:{port}"
        self.upload_url = self.url + "/"
        self.wait_until("/health")


class DevpiServer(Service):
    """devpi-server 6.20 with a private, non-mirroring index `bench/dev`; clients send devpi's
    login token as the Basic password, as devpi-client does (a plain password would cost an
    argon2 check per request)."""

    name = "devpi"
    simple_root = "/bench/dev/+simple/"
    offline = True  # a mirror index (bench/mirrors.py) needs devpi to fetch

    def __init__(self, workdir: Path):
        super().__init__(workdir)
        self.versions: dict[str, str] = {}

    def start(self) -> None:
        bin_dir = venv(self.workdir / "venv", DEVPI)
        self.versions = {"devpi-server": version(bin_dir, "devpi-server")}
        serverdir = str(self.workdir / "server")
        init = [str(bin_dir / "devpi-init"), "--serverdir", serverdir, "--no-root-pypi"]
        subprocess.run([*init, "--root-passwd", PASSWORD], check=True, capture_output=True,
                       timeout=120)  # fmt: skip
        port = free_port()
        command = [str(bin_dir / "devpi-server"), "--serverdir", serverdir, "--host", "127.0.0.1"]
        offline = ["--offline-mode"] if self.offline else []
        self.spawn([*command, "--port", str(port), *offline])
        self.url = f"http://127.0.0.1:{port}"
        self.wait_until("/+api")
        root = self._login("root", PASSWORD)
        self._api("PUT", f"/{USER}", {"password": PASSWORD}, "root", root)
        self.password = self._login(USER, PASSWORD)
        index = {"type": "stage", "bases": [], "volatile": True}
        self._api("PUT", f"/{USER}/dev", index, USER, self.password)
        self.upload_url = f"{self.url}/{USER}/dev/"

    def _login(self, user: str, password: str) -> str:
        answer = self._api("POST", "/+login", {"user": user, "password": password})
        return answer["result"]["password"]

    def _api(self, method: str, path: str, body: dict, user: str = "", token: str = "") -> dict:
        request = urllib.request.Request(self.url + path, json.dumps(body).encode(), method=method)
        request.add_header("Content-Type", "application/json")
        request.add_header("Accept", "application/json")
        if user:
            pair = base64.b64encode(f"{user}:{token}".encode()).decode()
            request.add_header("X-Devpi-Auth", pair)
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)
