"""The remote `repo` command as a developer on a laptop and a CI job use it: installed into a
venv of its own from the working tree, its config directory in a temp dir, against a live
gunicorn; then pip and R install what it uploaded with the tokens it made."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import shutil
import socket
import stat
import struct
import subprocess
import sys
import sysconfig
import termios
import threading
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .live import account_status, pip_install, rscript, run, sandboxed_env

ROOT = Path(__file__).parents[2]
PASSWORD = "alice-password"
# Not copied into the tree pip builds from: the venvs, the data and what the builds leave.
NOT_BUILT = shutil.ignore_patterns(".git", ".venv", "data", "build", "dist", "*.egg-info",
                                   "test-artifacts", "__pycache__", "tests", "bench")  # fmt: skip


@pytest.fixture(scope="module")
def repo_script(tmp_path_factory) -> Path:
    """`repo` installed with pip into a fresh venv from a copy of the working tree (so the
    build leaves nothing in it). Offline: its dependencies are the test venv's, which a .pth
    file puts on its path, and pip neither downloads nor builds in isolation. The keyring
    is off (REPO_KEYRING=0 in `Repo`): the secret goes to the file."""
    root = tmp_path_factory.mktemp("remote-cli")
    source = root / "src"
    shutil.copytree(ROOT, source, ignore=NOT_BUILT)
    venv = root / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True, timeout=120)
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "test-venv-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps",
                  "--no-index", "--no-build-isolation", "--disable-pip-version-check",
                  str(source)], env, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return venv / "bin" / "repo"


class Repo:
    """The installed `repo` with a home and a config directory of its own; stdin is never a
    terminal (a pipe with `stdin`, else /dev/null)."""

    def __init__(self, script: Path, home: Path, **env: str):
        self.script = script
        self.config_dir = home / "repo-config"
        clean = {k: v for k, v in sandboxed_env(home).items()
                 if k not in ("REPO_URL", "REPO_TOKEN", "REPO_DATA_DIR", "CI")}  # fmt: skip
        self.env = {**clean, "REPO_CONFIG_DIR": str(self.config_dir), "REPO_KEYRING": "0", **env}

    def __call__(self, *args: str, stdin: str | None = None, **env: str):
        return subprocess.run(
            [str(self.script), *args], input=stdin, capture_output=True, text=True, timeout=60,
            env={**self.env, **env}, stdin=subprocess.DEVNULL if stdin is None else None,
        )  # fmt: skip

    def ok(self, *args: str, **kwargs) -> str:
        result = self(*args, **kwargs)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def secret(self, url: str, user: str) -> str:
        return tomllib.loads((self.config_dir / "credentials.toml").read_text())["servers"][url][
            user
        ]


def api_json(server, path: str, token: str) -> dict:
    request = urllib.request.Request(f"{server.url}{path}",
                                     headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def users(live_server):
    live_server.cli("user", "create", "alice", "--password", PASSWORD)
    live_server.cli("user", "create", "bob", "--password", "bob-password")


@pytest.fixture(scope="module")
def alice(repo_script, live_server, users, tmp_path_factory) -> Repo:
    """alice logged in with her password, owner of the channel `ml` made remotely."""
    cli = Repo(repo_script, tmp_path_factory.mktemp("alice"))
    cli.login = cli("login", live_server.url, "--username", "alice", "--password-stdin",
                    stdin=PASSWORD + "\n")  # fmt: skip
    assert cli.login.returncode == 0, cli.login.stderr
    cli.ok("channel", "create", "ml", "--description", "models")
    return cli


@pytest.fixture(scope="module")
def read_token(alice) -> str:
    return alice.ok("token", "create", "--channel", "ml", "--scope", "read", "--label",
                    "installs").strip()  # fmt: skip


@pytest.fixture(scope="module")
def uploaded(alice, dists, r_built, tmp_path_factory) -> dict[str, str]:
    """`repo upload` of a wheel and sdist, an R source package, and R binaries for Linux and
    macOS; its stdout."""
    wheel, sdist = dists.build("remote-demo", "1.0")
    linux = r_built["abc_2.1_R_x86_64-pc-linux-gnu.tar.gz"]
    mac = tmp_path_factory.mktemp("mac") / "abc_2.1.tgz"
    mac.write_bytes(linux.read_bytes())
    return {
        "python": alice.ok("upload", "-c", "ml", str(wheel), str(sdist)),
        "r": alice.ok("upload", "-c", "ml", str(r_built["abc_2.1.tar.gz"])),
        "linux": alice.ok("upload", "-c", "ml", "--platform", "noble-x86_64", str(linux)),
        "mac": alice.ok("upload", "-c", "ml", "--platform", "big-sur-arm64", str(mac)),
        "paths": [wheel, sdist],
    }


def test_login_with_a_password_keeps_a_manage_token_in_a_private_file(alice, live_server):
    assert f"Logged in to {live_server.url} as alice" in alice.login.stderr
    assert "plain text" in alice.login.stderr and alice.login.stdout == ""
    config = (alice.config_dir / "config.toml").read_text()
    secret = alice.secret(live_server.url, "alice")
    assert secret.startswith("rp-") and secret not in config and secret not in alice.login.stderr
    assert tomllib.loads(config)["default_server"] == live_server.url
    credentials = alice.config_dir / "credentials.toml"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert stat.S_IMODE(alice.config_dir.stat().st_mode) == 0o700


def test_whoami_names_the_user_and_the_login_token(alice, live_server):
    assert alice.ok("whoami").startswith(f"alice on {live_server.url}\n")
    account = json.loads(alice.ok("whoami", "--json"))
    assert account["username"] == "alice" and account["is_admin"] is False
    assert account["token"]["scope"] == "manage"
    assert account["token"]["label"] == f"repo-cli:alice@{socket.gethostname()}"


def test_channel_list_and_show_never_print_the_secret(alice, live_server, read_token):
    channels = json.loads(alice.ok("channel", "list", "--json"))
    assert [(c["name"], c["privacy"], c["my_role"], c["description"]) for c in channels] == [
        ("ml", "private", "owner", "models")
    ]
    shown = alice.ok("channel", "show", "ml")
    assert f'--index-url "http://__token__:$REPO_TOKEN@{live_server.host}/api/repo/ml/simple/"' in (
        shown
    )
    assert 'Sys.getenv("REPO_TOKEN")' in shown and f"{live_server.url}/api/repo/ml" in shown
    assert alice.secret(live_server.url, "alice") not in shown and read_token not in shown


def test_token_create_prints_the_secret_alone(read_token):
    assert read_token.startswith("rp-") and "\n" not in read_token


def test_upload_detects_each_kind_and_says_what_it_uploaded(uploaded):
    python = uploaded["python"].splitlines()
    assert python[0].startswith("Uploaded remote_demo-1.0-py3-none-any.whl to ml (sha256 ")
    assert python[1].startswith("Uploaded remote_demo-1.0.tar.gz to ml (sha256 ")
    assert uploaded["r"].startswith("Uploaded abc_2.1.tar.gz to ml/src/contrib (sha256 ")
    # abc is pure R: its Built: names no platform, so --platform names the file too.
    assert uploaded["linux"].startswith(
        "Uploaded abc_2.1_R_noble-x86_64.tar.gz to ml/bin/linux/noble-x86_64/contrib/"
    )
    assert "abc_2.1.tgz to ml/bin/macosx/big-sur-arm64/contrib/" in uploaded["mac"]


def test_the_same_upload_again_is_fine(alice, uploaded):
    again = alice.ok("upload", "-c", "ml", *map(str, uploaded["paths"]))
    assert again.startswith("Already there (identical): remote_demo-1.0-py3-none-any.whl")


def test_pip_and_r_install_with_the_read_token(live_server, uploaded, read_token, tmp_path):
    index = f"http://__token__:{read_token}@{live_server.host}/api/repo/ml/simple/"
    result = pip_install(sandboxed_env(tmp_path / "home"), tmp_path / "py", index, "remote-demo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "py" / "remote_demo" / "__init__.py").is_file()
    lib = tmp_path / "rlib"
    lib.mkdir()
    code = f"""
        install.packages("abc", repos = "{live_server.url}/api/repo/t/{read_token}/ml/cran",
                         lib = "{lib}", type = "source", quiet = TRUE)
        cat("VERSION:", as.character(packageVersion("abc", lib.loc = "{lib}")), "\\n")
    """
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path),
           "LANG": "C.UTF-8"}  # fmt: skip
    installed = rscript(code, env)
    assert installed.returncode == 0 and "VERSION: 2.1" in installed.stdout, (
        installed.stdout + installed.stderr
    )


def test_package_list_and_yank(alice, live_server, uploaded):
    packages = json.loads(alice.ok("package", "list", "ml", "--json"))
    assert sorted((p["family"], p["name"], p["versions"]) for p in packages) == [
        ("cran", "abc", ["2.1"]), ("python", "remote-demo", ["1.0"])]  # fmt: skip
    assert "remote-demo" in alice.ok("package", "list", "ml", "--family", "python")
    wheel = "remote_demo-1.0-py3-none-any.whl"
    assert alice.ok("yank", "ml", wheel, "--reason", "broken") == f"Yanked {wheel}\n"
    token = alice.secret(live_server.url, "alice")

    def yanked() -> tuple:
        found = api_json(live_server, "/api/channels/ml/packages/python/remote-demo", token)
        return next((f["yanked"], f["yanked_reason"]) for f in found["files"]
                    if f["filename"] == wheel)  # fmt: skip

    assert yanked() == (True, "broken")
    assert alice.ok("unyank", "ml", wheel) == f"Unyanked {wheel}\n"
    assert yanked()[0] is False


def test_channel_history_is_the_same_remotely_and_locally(alice, live_server, uploaded, dists):
    wheel = dists.build("history-demo", "1.0")[0]
    alice.ok("upload", "-c", "ml", str(wheel))
    alice.ok("yank", "ml", wheel.name, "--reason", "broken")
    token = alice.secret(live_server.url, "alice")
    delete = urllib.request.Request(f"{live_server.url}/api/channels/ml/files/{wheel.name}",
                                    method="DELETE",
                                    headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    with urllib.request.urlopen(delete, timeout=10) as response:
        assert response.status == 204

    newest = json.loads(alice.ok("channel", "history", "ml", "--limit", "3", "--json"))
    table = alice.ok("channel", "history", "ml", "--limit", "3")

    assert [(e["event"], e["filename"], e["actor"], e["yanked_reason"]) for e in newest] == [
        ("upload", wheel.name, "alice", None), ("yank", wheel.name, "alice", "broken"),
        ("delete", wheel.name, "alice", None),
    ]  # fmt: skip
    file = ["python", newest[0]["package"], "1.0", wheel.name, "alice"]
    assert [line.split() for line in table.splitlines()] == [
        [event["at"], event["event"], *file] for event in newest
    ]
    whole = json.loads(alice.ok("channel", "history", "ml", "--json"))
    assert whole == json.loads(live_server.cli("channel", "history", "ml", "--json"))
    assert whole[-3:] == newest and len(whole) > 3
    local = live_server.cli("channel", "history", "ml")
    assert alice.ok("channel", "history", "ml").strip() == local


def test_remote_token_list_json_is_the_local_one(alice, live_server, read_token):
    remote = json.loads(alice.ok("token", "list", "--json"))
    local = json.loads(live_server.cli("token", "list", "alice", "--json"))
    assert [sorted(t) for t in remote] == [sorted(t) for t in local]
    assert [t["label"] for t in remote] == [t["label"] for t in local]
    assert any(t["label"] == "installs" and t["channel"] == "ml" for t in remote)


def test_revoking_the_read_token_stops_pip(alice, live_server, uploaded, read_token, tmp_path):
    tokens = json.loads(alice.ok("token", "list", "--json"))
    token_id = next(t["id"] for t in tokens if t["label"] == "installs")
    assert alice.ok("token", "revoke", str(token_id)) == f"Revoked token {token_id}\n"
    index = f"http://__token__:{read_token}@{live_server.host}/api/repo/ml/simple/"
    result = pip_install(sandboxed_env(tmp_path / "home"), tmp_path / "py", index, "remote-demo")
    assert result.returncode != 0 and "401" in result.stdout + result.stderr


def test_rotate_gives_a_new_secret_and_refuses_the_old(alice, live_server):
    old = alice.ok("token", "create", "--scope", "read", "--label", "rotate-me").strip()
    token_id = api_json(live_server, "/api/account", old)["token"]["id"]
    new = alice.ok("token", "rotate", str(token_id)).strip()
    assert new.startswith("rp-") and new != old
    assert account_status(live_server, old) == 401
    assert account_status(live_server, new) == 200


@pytest.fixture(scope="module")
def channel_read_token(alice, uploaded) -> str:
    return alice.ok("token", "create", "--channel", "ml", "--scope", "read").strip()


def other_wheel(dists) -> Path:
    """remote_demo-1.0-py3-none-any.whl with other content."""
    return dists.build("remote-demo", "1.0", variant="other")[0]


@pytest.mark.parametrize(
    "args, env, code, message",
    [
        (["token", "create", "--channel", "ml"], {}, 2, "Give --scope"),
        (["--data-dir", "d", "token", "list"], {"REPO_URL": "URL"}, 2, "not both"),
        (["channel", "edit", "ml"], {}, 2, "Nothing to change"),
        (["channel", "create", "Bad Name"], {}, 1, "Invalid channel name 'Bad Name'"),
        (["channel", "show", "nope"], {}, 3, "Channel 'nope' not found"),
        (["token", "revoke", "999"], {}, 3, "Token 999 not found"),
        (["token", "create", "--scope", "read"], {"REPO_TOKEN": "READ"}, 3, ""),
        (["whoami"], {"REPO_TOKEN": "rp-" + "C" * 49}, 4, "Invalid token"),
        (["channel", "create", "ml"], {}, 5, "already exists"),
        (["upload", "-c", "ml", "OTHER"], {}, 5, "remote_demo-1.0-py3-none-any.whl: File already"),
        (["upload", "-c", "ml", "README.md"], {}, 1, "not a wheel, sdist or R package"),
    ],
)
def test_every_refusal_has_its_exit_code_and_the_servers_detail(
    alice, live_server, uploaded, channel_read_token, dists, args, env, code, message
):
    swap = {"URL": live_server.url, "READ": channel_read_token, "OTHER": str(other_wheel(dists)),
            "README.md": str(ROOT / "README.md")}  # fmt: skip
    result = alice(*[swap.get(a, a) for a in args], **{k: swap.get(v, v) for k, v in env.items()})
    assert result.returncode == code, result.stdout + result.stderr
    assert message in result.stderr and result.stdout == ""


def test_skip_existing_goes_on_past_a_conflict(alice, uploaded, dists):
    result = alice("upload", "-c", "ml", "--skip-existing", str(other_wheel(dists)),
                   str(uploaded["paths"][1]))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Skipped remote_demo-1.0-py3-none-any.whl: File already exists" in result.stderr
    assert result.stdout.startswith("Already there (identical): remote_demo-1.0.tar.gz")


def test_a_ci_job_works_with_repo_token_and_never_prompts(repo_script, live_server, alice,
                                                          uploaded, dists, tmp_path):  # fmt: skip
    write = alice.ok("token", "create", "--channel", "ml", "--scope", "write").strip()
    ci = Repo(repo_script, tmp_path / "ci", CI="true", REPO_URL=live_server.url)
    account = json.loads(ci.ok("whoami", "--json", REPO_TOKEN=write))
    assert account["username"] == "alice" and account["token"]["channel"] == "ml"
    new = dists.build("ci-built", "0.1")[0]
    assert ci.ok("upload", "-c", "ml", str(new), REPO_TOKEN=write).startswith("Uploaded ")
    refused = ci("login", live_server.url, "--username", "alice", REPO_TOKEN=write)
    assert refused.returncode == 1 and "REPO_TOKEN environment variable is being used" in (
        refused.stderr
    )
    nothing = ci("whoami")
    assert nothing.returncode == 4 and f"Not logged in to {live_server.url}" in nothing.stderr
    no_prompt = ci("login", live_server.url, "--username", "alice")
    assert no_prompt.returncode == 4 and "does not prompt" in no_prompt.stderr
    assert not ci.config_dir.exists()


def test_a_wrong_password_is_refused_with_exit_4(repo_script, live_server, users, tmp_path):
    cli = Repo(repo_script, tmp_path)
    result = cli("login", live_server.url, "-u", "alice", "--password-stdin", stdin="wrong\n")
    assert result.returncode == 4, result.stderr
    assert not (cli.config_dir / "credentials.toml").exists()


def test_login_with_a_token_from_stdin(repo_script, live_server, alice, tmp_path):
    token = alice.ok("token", "create", "--scope", "write", "--label", "given").strip()
    cli = Repo(repo_script, tmp_path)
    cli.ok("login", live_server.url, "--token-stdin", stdin=token)
    assert cli.secret(live_server.url, "alice") == token
    assert "token" in cli.ok("whoami") and "scope write" in cli.ok("whoami")


def test_logout_revokes_the_login_token_and_forgets_it(repo_script, live_server, users,
                                                       tmp_path):  # fmt: skip
    cli = Repo(repo_script, tmp_path)
    cli.ok("login", live_server.url, "-u", "bob", "--password-stdin", stdin="bob-password")
    secret = cli.secret(live_server.url, "bob")
    result = cli("logout")
    assert result.returncode == 0 and f"Logged out of {live_server.url}" in result.stderr
    assert account_status(live_server, secret) == 401
    assert not (cli.config_dir / "credentials.toml").exists()
    config = tomllib.loads((cli.config_dir / "config.toml").read_text())
    assert config.get("servers", {}) == {} and "default_server" not in config
    assert cli("whoami").returncode == 2  # no server left to talk to


def test_logout_forgets_a_login_whose_secret_is_gone(repo_script, live_server, users, tmp_path):
    cli = Repo(repo_script, tmp_path)
    cli.ok("login", live_server.url, "-u", "bob", "--password-stdin", stdin="bob-password")
    (cli.config_dir / "credentials.toml").unlink()
    assert cli("whoami").returncode == 4

    result = cli("logout")

    assert result.returncode == 0, result.stderr
    assert "no secret was kept for it, so its token was not revoked" in result.stderr
    config = tomllib.loads((cli.config_dir / "config.toml").read_text())
    assert config.get("servers", {}) == {} and "default_server" not in config
    assert cli("whoami").returncode == 2


def test_a_server_url_with_a_password_is_refused_without_repeating_it(repo_script, tmp_path):
    cli = Repo(repo_script, tmp_path)
    result = cli("login", "http://alice:hunter2@127.0.0.1:9/", "--password-stdin", stdin="x")
    assert result.returncode == 2
    assert "no credentials" in result.stderr and "hunter2" not in result.stderr


def test_rotating_the_login_token_keeps_the_login(repo_script, live_server, users, tmp_path):
    cli = Repo(repo_script, tmp_path)
    login = ("login", live_server.url, "-u", "bob", "--password-stdin", "--label", "rotating")
    cli.ok(*login, stdin="bob-password")
    first = cli.secret(live_server.url, "bob")
    cli.ok(*login, stdin="bob-password")
    old = cli.secret(live_server.url, "bob")
    assert account_status(live_server, first) == 401  # the same label: replaced
    token_id = json.loads(cli.ok("whoami", "--json"))["token"]["id"]
    rotated = cli("token", "rotate", str(token_id))
    assert rotated.returncode == 0 and "stored login now uses the new secret" in rotated.stderr
    assert cli.secret(live_server.url, "bob") == rotated.stdout.strip() != old
    assert cli.ok("whoami").startswith("bob on ")


def test_upload_shows_a_progress_bar_on_a_terminal_only(alice, dists):
    wheel = dists.build("progress-demo", "1.0", readme="x" * 200_000)[0]
    primary, secondary = pty.openpty()
    # A terminal of 80 columns, as a real one has a size (a bare pty's 0 columns fit no bar).
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    shown = bytearray()

    def read_terminal() -> None:
        with contextlib.suppress(OSError):  # EIO once the command has closed it
            while chunk := os.read(primary, 65536):
                shown.extend(chunk)

    reader = threading.Thread(target=read_terminal)
    reader.start()
    try:
        result = subprocess.run([str(alice.script), "upload", "-c", "ml", str(wheel)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=secondary, env=alice.env, timeout=60)  # fmt: skip
    finally:
        os.close(secondary)
        reader.join(10)
        os.close(primary)
    assert result.returncode == 0 and result.stdout.startswith(b"Uploaded progress_demo-1.0")
    assert f"{wheel.name}:".encode() in shown and b"%|" in shown
    again = alice("upload", "-c", "ml", str(wheel))
    assert again.returncode == 0 and again.stderr == ""
