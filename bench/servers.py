"""The servers under test, each on 127.0.0.1 with Basic auth on every request: the common
process handling, `repo` itself and nginx serving a static PEP 503 tree (the ceiling)."""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
STARTUP_DEADLINE = 60
USER = "bench"
PASSWORD = "bench-password"


def free_port() -> int:
    """A port the OS has just handed out on 127.0.0.1, for servers that cannot bind port 0 and
    say which port they got."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tool(name: str) -> str:
    """A command from the project's venv first (twine, uv, repo), else from PATH."""
    return str(BIN / name) if (BIN / name).exists() else name


class Service:
    """One server process (and its children) with its log; `stop()` ends it in every case."""

    name = "server"
    simple_root = "/simple/"
    process: subprocess.Popen | None = None

    def __init__(self, workdir: Path):
        self.workdir = workdir / self.name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "server.log"
        self.url = ""
        self.upload_url = ""
        self.user, self.password = USER, PASSWORD

    # --- what the clients need ---------------------------------------------------------------
    @property
    def authorization(self) -> str:
        """The Authorization header every request of the benchmark sends."""
        pair = f"{self.user}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def index_url(self) -> str:
        """The simple index root with the credentials in it, for pip and uv."""
        root = self.url + self.simple_root
        user = urllib.parse.quote(self.user, safe="")
        password = urllib.parse.quote(self.password, safe="")
        return root.replace("http://", f"http://{user}:{password}@", 1)

    def project_path(self, project: str) -> str:
        return f"{self.simple_root}{project}/"

    # --- the process -------------------------------------------------------------------------
    def spawn(self, args: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child holds it for its lifetime
        try:
            self.process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                cwd=self.workdir,
            )
        finally:
            log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_until(self, path: str, deadline: float = STARTUP_DEADLINE) -> None:
        """Poll `url + path` until it answers anything below 500; fail with the log."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log()[-2000:]}")
            try:
                request = urllib.request.Request(self.url + path)
                request.add_header("Authorization", self.authorization)
                urllib.request.urlopen(request, timeout=5).read()
                return
            except urllib.error.HTTPError as error:
                if error.code < 500:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer in {deadline}s: {self.log()[-2000:]}")

    def pids(self) -> list[int]:
        """The server's process and all its descendants (gunicorn or nginx workers)."""
        if self.process is None or self.process.poll() is not None:
            return []
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                # The command name may hold spaces and parentheses: split after the last ")".
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
        tree, frontier = [self.process.pid], [self.process.pid]
        while frontier:
            children = [pid for pid, parent in parents.items() if parent in frontier]
            tree += children
            frontier = children
        return tree

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(15)


class RepoServer(Service):
    """`repo serve` as `make serve` runs it (2 gthread workers), with a user token."""

    name = "repo"
    channel = "bench"
    r_channel = "rpkgs"
    channels = (channel, r_channel)  # made at setup
    workers = 2

    def __init__(self, workdir: Path, max_upload_mb: int):
        super().__init__(workdir)
        self.data_dir = self.workdir / "data"
        # Failed-auth throttling off: the benchmark fails no login, but a 429 would skew it.
        self.env = {"REPO_MAX_UPLOAD_MB": str(max_upload_mb), "REPO_AUTH_FAILURE_LIMIT": "0"}
        self.simple_root = f"/api/repo/{self.channel}/simple/"

    def cli(self, *args: str) -> str:
        command = [tool("repo"), "--data-dir", str(self.data_dir), *args]
        env = {**os.environ, **self.env}
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
        if result.returncode != 0:
            raise RuntimeError(f"repo {' '.join(args[:2])}: {result.stderr.strip()}")
        return result.stdout.strip()

    def start(self) -> None:
        self.setup()
        self.serve()

    def setup(self) -> None:
        """The benchmark's user, its channels and a token, through the command line."""
        self.cli("user", "create", USER, "--password", PASSWORD)
        for channel in self.channels:
            self.cli("channel", "create", channel, "--owner", USER)
        # The documented CI form: `__token__` as the user name, the token as the password.
        self.user, self.password = "__token__", self.cli("token", "create", USER, "--label", "b")

    def serve(self) -> None:
        """`repo serve` on a port the OS picks; returns once /healthz answers."""
        command = [tool("repo"), "--data-dir", str(self.data_dir), "serve"]
        self.spawn([*command, "--bind", "127.0.0.1:0", "--workers", str(self.workers)], self.env)
        end = time.monotonic() + STARTUP_DEADLINE
        while not (match := re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", self.log())):
            if time.monotonic() > end or self.process.poll() is not None:
                raise RuntimeError(f"repo did not start: {self.log()[-2000:]}")
            time.sleep(0.1)
        self.url = match[1]
        self.upload_url = f"{self.url}/api/repo/{self.channel}"
        self.wait_until("/healthz")


NGINX_CONF = """\
{user}worker_processes 2;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {root}/access.log combined buffer=64k;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 100000;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {tree};
        auth_basic "bench";
        auth_basic_user_file {htpasswd};
        location / {{ index index.html; }}
    }}
}}
"""


class NginxServer(Service):
    """Debian's nginx on a static tree laid out like a PEP 503 simple index: the ceiling that
    a server answering from memory or disk could reach."""

    name = "nginx"

    def __init__(self, workdir: Path, htpasswd: Path):
        super().__init__(workdir)
        self.tree = self.workdir / "tree"
        self.htpasswd = htpasswd

    def start(self) -> None:
        port = free_port()
        (self.workdir / "tmp").mkdir(exist_ok=True)
        conf = self.workdir / "nginx.conf"
        # As root, nginx's workers would drop to `nobody`, who cannot read the temp dirs.
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf.write_text(
            NGINX_CONF.format(
                user=user, root=self.workdir, port=port, tree=self.tree, htpasswd=self.htpasswd
            )
        )
        self.spawn(["nginx", "-c", str(conf), "-p", str(self.workdir), "-g", "daemon off;"])
        self.url = f"http://127.0.0.1:{port}"
        self.wait_until("/simple/")
