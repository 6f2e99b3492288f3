"""The `repo` command as an admin runs it: each subcommand against a real data dir, output
on stdout, errors on stderr with a non-zero exit, and the first start of `repo serve`."""

from __future__ import annotations

import json
import subprocess

import pytest

from repo import accounts, create_app, files
from repo.db import get_db

from .. import conftest
from ..unit.builders import WHEEL_NAME, token_auth, twine_form
from .live import ADMIN_PASSWORD, LiveServer, tool


def repo(data_dir, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([tool("repo"), "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, timeout=60, env=env)  # fmt: skip


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A data dir with alice and her channel dev, on the stack of the run: on `--stack=scale`
    a database and a bucket of its own, which every command of the test reaches through the
    environment, as an admin's shell would."""
    for name, value in conftest.STACK.environ().items():
        monkeypatch.setenv(name, value)
    data = tmp_path / "data"
    assert repo(data, "user", "create", "alice", "--password", "alice-password").returncode == 0
    assert repo(data, "channel", "create", "dev", "--owner", "alice").returncode == 0
    return data


def test_token_create_prints_the_token_alone(data_dir):
    result = repo(data_dir, "token", "create", "alice", "--channel", "dev", "--scope", "read",
                  "--expires-in", "90d", "--label", "laptop")  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rp-") and len(lines[0]) == 52


def test_token_list_json_has_every_field_and_no_secret(data_dir):
    secret = repo(data_dir, "token", "create", "alice", "--label", "ci").stdout.strip()
    repo(data_dir, "token", "create", "alice", "--channel", "dev", "--scope", "write")
    result = repo(data_dir, "token", "list", "--json")
    assert result.returncode == 0, result.stderr
    tokens = json.loads(result.stdout)
    assert secret not in result.stdout
    assert [(t["user"], t["channel"], t["scope"], t["label"]) for t in tokens] == [
        ("alice", None, "manage", "ci"),
        ("alice", "dev", "write", ""),
    ]
    for token in tokens:
        assert {"id", "user", "channel", "scope", "label", "created", "last_used", "expires",
                "revoked"} <= set(token)  # fmt: skip
        assert token["revoked"] is None and token["last_used"] is None


def test_a_local_user_token_may_have_a_narrower_scope(data_dir):
    assert repo(data_dir, "token", "create", "alice", "--scope", "read").returncode == 0
    assert json.loads(repo(data_dir, "token", "list", "--json").stdout)[0]["scope"] == "read"


def test_token_revoke_marks_the_token(data_dir):
    repo(data_dir, "token", "create", "alice")
    assert repo(data_dir, "token", "revoke", "1").returncode == 0
    assert json.loads(repo(data_dir, "token", "list", "alice", "--json").stdout)[0]["revoked"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["user", "create", "alice", "--password", "another-password"], "already exists"),
        (["user", "create", "carol", "--password", "short"], "Password too short"),
        (["channel", "create", "Bad Name", "--owner", "alice"], "Invalid channel name"),
        (["channel", "create", "t", "--owner", "alice"], "Channel name 't' is reserved"),
        (["channel", "create", "x", "--owner", "nobody"], "User 'nobody' not found"),
        (["channel", "grant", "nope", "alice", "--role", "read"], "Channel 'nope' not found"),
        (["token", "create", "alice", "--channel", "dev"], "channel token: use read or write"),
        (["token", "create", "--scope", "read"], "Give USER"),
        (["channel", "create", "x"], "Give --owner USER"),
        (["token", "create", "alice", "--expires-in", "soon"], "Invalid duration 'soon'"),
        (["token", "revoke", "99"], "Token 99 not found"),
        (["yank", "dev", "nope-1.0.tar.gz"], "File 'nope-1.0.tar.gz' not found"),
        (["channel", "history", "nope"], "Channel 'nope' not found"),
        (["channel", "history", "dev", "--limit", "0"], "Invalid value for '--limit'"),
    ],
)
def test_errors_go_to_stderr_with_nonzero_exit(data_dir, args, message):
    result = repo(data_dir, *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert result.stdout == ""


def test_channel_history_lists_each_change_oldest_first(data_dir):
    """alice's upload (in-process, as the server makes it), a yank with `repo yank` and a
    delete from the console (which has no command for it, nor a user to name)."""
    secret = repo(data_dir, "token", "create", "alice", "--channel", "dev", "--scope", "write")
    app = create_app({"DATA_DIR": str(data_dir)})
    uploaded = app.test_client().post("/api/repo/dev", data=twine_form(),
                                      headers=token_auth(secret.stdout.strip()))  # fmt: skip
    assert uploaded.status_code == 200, uploaded.status
    assert repo(data_dir, "yank", "dev", WHEEL_NAME, "--reason", "broken").returncode == 0
    with app.app_context():
        db = get_db()
        channel_id = accounts.find_channel(db, "dev")["id"]
        files.delete_file(db, channel_id, files.named(db, channel_id, WHEEL_NAME)[0]["id"])

    table = repo(data_dir, "channel", "history", "dev")
    events = json.loads(repo(data_dir, "channel", "history", "dev", "--json").stdout)

    assert table.returncode == 0, table.stderr
    file = ["python", "Demo.Pkg", "1.0", WHEEL_NAME]
    assert [line.split() for line in table.stdout.splitlines()] == [
        [events[0]["at"], "upload", *file, "alice"],
        [events[1]["at"], "yank", *file, "-"],
        [events[2]["at"], "delete", *file, "-"],
    ]
    assert [(e["event"], e["kind"], e["actor"], e["yanked_reason"]) for e in events] == [
        ("upload", "bdist_wheel", "alice", None), ("yank", "bdist_wheel", None, "broken"),
        ("delete", "bdist_wheel", None, None),
    ]  # fmt: skip
    assert events[0]["at"] < events[1]["at"] < events[2]["at"]
    newest = repo(data_dir, "channel", "history", "dev", "--limit", "1", "--json")
    assert json.loads(newest.stdout) == events[2:]


def test_first_start_creates_admin_once(tmp_path):
    server = LiveServer(tmp_path / "data")
    try:
        assert f"Created user 'admin' with password: {ADMIN_PASSWORD}" in server.log()
        assert f"repo is ready at {server.url}/" in server.log()
    finally:
        server.stop()
    again = LiveServer(tmp_path / "data", **server.storage)
    try:
        assert "Created user 'admin'" not in again.log()
    finally:
        again.stop()


def test_python_dash_m_repo_is_the_same_command(data_dir):
    result = subprocess.run([tool("python"), "-m", "repo", "--data-dir", str(data_dir),
                             "token", "list", "--json"], capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
