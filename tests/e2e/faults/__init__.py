"""The test's side of fault injection (the server's side is `sitecustomize.py` here): start a
live server that watches a folder, arm one point of it, wait for a request to reach it, kill
the whole server with SIGKILL; and the curl uploads and index reads that drive and check it."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ...unit import builders
from ..live import LiveServer, tool

HOOKS = Path(__file__).parent
DEADLINE = 30
JSON = "application/vnd.pypi.simple.v1+json"


def workers_of(server: LiveServer) -> list[int]:
    """The pids of the gunicorn workers of `server`."""
    children = f"/proc/{server.process.pid}/task/{server.process.pid}/children"
    with open(children) as handle:
        return [int(pid) for pid in handle.read().split()]


def kill(server: LiveServer) -> None:
    """kill -9 of the master and every worker at once: nothing runs a cleanup."""
    pids = [server.process.pid, *workers_of(server)]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    server.process.wait(10)
    server.stop()


class Faults:
    """A folder that a server started with `env` watches for the point to act at."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def env(self) -> dict[str, str]:
        """What puts sitecustomize.py on a server's path and points it at the folder."""
        path = os.pathsep.join(filter(None, [str(HOOKS), os.environ.get("PYTHONPATH")]))
        return {"PYTHONPATH": path, "FAULT_INJECTION_DIR": str(self.folder)}

    def server(self, data_dir: Path, **settings: str) -> LiveServer:
        """A live server on `data_dir` that watches this folder."""
        return LiveServer(data_dir, **self.env, **settings)

    def arm(self, point: str, action: str, **options) -> None:
        """At `point`, "pause" (until killed), "fill" the disk (options: filler, the file to
        grow; truncate_wal) or "meet" (options: count, the requests to wait for)."""
        self.disarm()
        partial = self.folder / ".armed.json"
        partial.write_text(json.dumps({"point": point, "action": action, **options}))
        os.replace(partial, self.folder / "armed.json")

    def disarm(self) -> None:
        for path in [*self.folder.glob("arrived-*"), *self.folder.glob("*.json")]:
            path.unlink()

    def reached(self) -> dict:
        """The report of the request that reached the armed point, once there is one: its
        point, pid and the state of its database connection."""
        report = self.folder / "reached.json"
        deadline = time.monotonic() + DEADLINE
        while not report.is_file():
            assert time.monotonic() < deadline, f"no request reached the point in {DEADLINE}s"
            time.sleep(0.02)
        return json.loads(report.read_text())


def hooked(root: Path, data_dir: Path | None = None) -> tuple[Faults, LiveServer, Path]:
    """Under `root`: a Faults folder, a live server that watches it (on `data_dir`, else
    root/data) with the user alice, and a folder for the files clients send."""
    hooks = Faults(root / "faults")
    server = hooks.server(data_dir or root / "data")
    server.cli("user", "create", "alice", "--password", "alice-password")
    (root / "work").mkdir()
    return hooks, server, root / "work"


@dataclass(frozen=True)
class Upload:
    """A file and the form fields curl sends with it: twine's for a wheel, R's for a tarball."""

    filename: str
    data: bytes
    fields: tuple[str, ...]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")


def wheel_upload(name: str, version: str = "1.0", variant: bytes = b"") -> Upload:
    """A small valid wheel of `name`; another `variant` gives other bytes under the same name."""
    module = name.replace("-", "_")
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    data = builders.wheel(meta, f"{module}-{version}.dist-info", code=variant)
    digest = hashlib.sha256(data).hexdigest()
    return Upload(f"{module}-{version}-py3-none-any.whl", data,
                  (":action=file_upload", f"sha256_digest={digest}"))  # fmt: skip


def r_upload(name: str, version: str = "1.0", variant: bytes = b"") -> Upload:
    """A small R source package of `name`, as R CMD build lays it out."""
    description = f"Package: {name}\nVersion: {version}\nTitle: Test\nLicense: MIT\n"
    data = builders.tar_gz({f"{name}/DESCRIPTION": description.encode(),
                            f"{name}/R/{name}.R": b"f <- 1\n" + variant})  # fmt: skip
    return Upload(f"{name}_{version}.tar.gz", data, ("filetype=cran_source_package",))


def send(url: str, token: str, upload: Upload, folder: Path) -> subprocess.Popen:
    """Start `curl -F ... -F content=@FILE` to the upload URL `url`; see `answer`."""
    path = Path(tempfile.mkdtemp(dir=folder)) / upload.filename
    path.write_bytes(upload.data)
    fields = [arg for field in upload.fields for arg in ("-F", field)]
    return subprocess.Popen(
        [tool("curl"), "-sS", "-w", "\n%{http_code}", "-H", f"X-Auth: {token}", *fields,
         "-F", f"content=@{path}", url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def answer(client: subprocess.Popen) -> tuple[int, str]:
    """The HTTP status and the one-line message of a `send` (status 0: no answer at all)."""
    out, _ = client.communicate(timeout=DEADLINE)
    body, _, status = out.rpartition("\n")
    return int(status or 0), body.strip()


def get(url: str, accept: str = "*/*") -> tuple[int, bytes]:
    """The status and body of a GET (a 4xx or 5xx is an answer, not an exception)."""
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=DEADLINE) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def python_files(base: str, project: str) -> dict[str, str]:
    """filename -> sha256 of every file the PEP 691 page of `project` lists (none: 404)."""
    status, body = get(f"{base}/simple/{project}/", JSON)
    assert status in (200, 404), (status, body)
    files = json.loads(body)["files"] if status == 200 else []
    return {f["filename"]: f["hashes"]["sha256"] for f in files}


def r_packages(base: str) -> dict[str, dict[str, str]]:
    """whole_index of the channel's src/contrib/PACKAGES (always there, empty or not)."""
    status, body = get(f"{base}/cran/src/contrib/PACKAGES")
    assert status == 200, (status, body)
    return whole_index(body)


def whole_index(packages: bytes) -> dict[str, dict[str, str]]:
    """Package -> its fields, of a PACKAGES file that must not be torn: it ends with a line,
    and every stanza has the fields R needs."""
    text = packages.decode()
    assert text == "" or text.endswith("\n"), f"a torn PACKAGES: {text!r}"
    stanzas = [dict(line.split(": ", 1) for line in stanza.splitlines() if line[:1] != " ")
               for stanza in text.split("\n\n") if stanza.strip()]  # fmt: skip
    assert all({"Package", "Version", "MD5sum"} <= stanza.keys() for stanza in stanzas), text
    return {stanza["Package"]: stanza for stanza in stanzas}


def listed(base: str, upload: Upload) -> bool:
    """Whether the channel's index lists `upload` with its very bytes."""
    if upload.is_wheel:
        project = upload.filename.split("-")[0].replace("_", "-")
        return python_files(base, project).get(upload.filename) == upload.sha256
    name, _, version = upload.filename.removesuffix(".tar.gz").partition("_")
    stanza = r_packages(base).get(name, {})
    return (stanza.get("Version"), stanza.get("MD5sum")) == (version, md5(upload.data))


def downloaded(base: str, upload: Upload) -> bytes:
    """The bytes the channel serves for `upload`'s file name."""
    if upload.is_wheel:
        url = f"{base}/files/{upload.sha256}/{upload.filename}"
    else:
        url = f"{base}/cran/src/contrib/{upload.filename}"
    status, body = get(url)
    assert status == 200, (status, body)
    return body


def md5(data: bytes) -> str:
    """The MD5sum field R's PACKAGES gives a file."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def referenced(server: LiveServer) -> set[str]:
    """Every blob a row of the server's database names."""
    rows = server.query("SELECT sha256 FROM files UNION SELECT metadata_sha256 FROM files"
                        " WHERE metadata_sha256 IS NOT NULL")  # fmt: skip
    return {sha256 for (sha256,) in rows}
