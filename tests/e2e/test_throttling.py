"""Failed-authentication throttling on a real gunicorn with several workers: the count is
shared, a client gets a clear 429 with Retry-After, and pip's wrong token is among them."""

from __future__ import annotations

import pytest

from .live import LiveServer, pip_download, run, tool

LIMIT = 4


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory):
    server = LiveServer(tmp_path_factory.mktemp("strict") / "data",
                        REPO_AUTH_FAILURE_LIMIT=str(LIMIT))  # fmt: skip
    server.cli("user", "create", "alice", "--password", "alice-password")
    server.cli("channel", "create", "locked", "--owner", "alice")
    yield server
    server.stop()


def curl_status(url: str, *args: str) -> tuple[int, str]:
    result = run([tool("curl"), "-sS", "-o", "/dev/stderr", "-w", "%{http_code}", "-D", "-",
                  *args, url], {"PATH": "/usr/bin:/bin"})  # fmt: skip
    head, _, status = result.stdout.rpartition("\n")
    return int(status or result.stdout[-3:]), result.stdout + result.stderr


def test_failures_from_one_address_end_in_429(strict_server, client_env, tmp_path):
    s = strict_server
    url = f"{s.url}/api/repo/locked/simple/"
    wrong = pip_download(f"{s.url}/api/repo/t/rp-{'D' * 49}/locked/simple", tmp_path,
                         client_env, "anything")  # fmt: skip
    assert wrong.returncode != 0
    statuses = [curl_status(url, "-u", "alice:wrong-password")[0] for _ in range(LIMIT)]
    assert statuses[0] == 401 and statuses[-1] == 429, statuses

    status, output = curl_status(url, "-u", "alice:alice-password")

    assert status == 429, output
    assert "Too many failed authentications from this address" in output
    assert "Retry-After:" in output
