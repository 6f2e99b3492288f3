"""Many clients at once against two gunicorn workers: concurrent uploads to one channel (the
same file from two clients included) with reads running beside them end with no 5xx, no lost
or doubled file, and an index that lists exactly what was acknowledged. Bounded in count and
time, against 127.0.0.1 only."""

from __future__ import annotations

import hashlib
import io
import json
import urllib.error
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

UPLOADS = 24
SAME_FILE_CLIENTS = 4
READS = 60
DEADLINE = 60
JSON = "application/vnd.pypi.simple.v1+json"


def wheel(name: str, version: str) -> tuple[str, bytes]:
    """A small valid wheel, built in memory."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr(f"{module}/__init__.py", f"NAME = {name!r}\n")
        zipped.writestr(f"{dist_info}/METADATA", metadata)
        zipped.writestr(f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nTag: py3-none-any\n")
        zipped.writestr(f"{dist_info}/RECORD", b"")
    return f"{module}-{version}-py3-none-any.whl", buffer.getvalue()


def upload(url: str, filename: str, data: bytes) -> int:
    form = {
        ":action": "file_upload", "protocol_version": "1",
        "sha256_digest": hashlib.sha256(data).hexdigest(),
        "content": FileStorage(io.BytesIO(data), filename),
    }  # fmt: skip
    boundary, body = encode_multipart(form)
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=DEADLINE) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def read(url: str) -> int:
    request = urllib.request.Request(url, headers={"Accept": JSON})
    try:
        with urllib.request.urlopen(request, timeout=DEADLINE) as response:
            json.load(response)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(scope="module")
def base(live_server):
    live_server.cli("user", "create", "alice", "--password", "alice-password")
    live_server.cli("channel", "create", "busy", "--owner", "alice")
    token = live_server.cli("token", "create", "alice", "--channel", "busy", "--scope", "write")
    return f"{live_server.url}/api/repo/t/{token}/busy"


def test_concurrent_uploads_and_reads(live_server, base):
    distinct = [wheel(f"pkg{i % 6}", f"1.{i}") for i in range(UPLOADS)]
    same = wheel("shared", "1.0")
    with ThreadPoolExecutor(max_workers=12) as pool:
        uploads = [pool.submit(upload, base, *w) for w in distinct]
        uploads += [pool.submit(upload, base, *same) for _ in range(SAME_FILE_CLIENTS)]
        reads = [pool.submit(read, f"{base}/simple/") for _ in range(READS)]
        reads += [pool.submit(read, f"{base}/simple/pkg{i % 6}/") for i in range(READS)]
        upload_statuses = [f.result(timeout=DEADLINE) for f in uploads]
        read_statuses = [f.result(timeout=DEADLINE) for f in reads]

    assert upload_statuses == [200] * (UPLOADS + SAME_FILE_CLIENTS)
    assert set(read_statuses) <= {200, 404}  # a project page may be read before its upload
    rows = live_server.query("SELECT filename, count(*) FROM files GROUP BY filename")
    assert sorted(rows) == sorted([(name, 1) for name, _ in distinct] + [(same[0], 1)])
    listed = set()
    for i in range(6):
        request = urllib.request.Request(f"{base}/simple/pkg{i}/", headers={"Accept": JSON})
        with urllib.request.urlopen(request) as page:
            listed |= {f["filename"] for f in json.load(page)["files"]}
    assert listed == {name for name, _ in distinct}
    log = live_server.log()
    assert "database is locked" not in log and "Traceback" not in log
    assert " 500 " not in log
    assert live_server.pending() == []
