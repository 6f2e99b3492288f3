"""config.toml of the remote command line, and the one rule that says whether a shared verb
goes to the data directory or to a server."""

from __future__ import annotations

import stat

import click
import pytest
from click.testing import CliRunner

from repo.cli import cli
from repo.errors import RepoError, Unauthorized
from repo.remote.config import Config, Login, config_dir, server_url
from repo.remote.target import Where

URL = "https://repo.example"


@pytest.mark.parametrize(
    "given, stored",
    [
        ("https://repo.example", URL),
        ("https://repo.example/", URL),
        ("HTTPS://Repo.Example/", URL),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        (" https://host/prefix/ ", "https://host/prefix"),
    ],
)
def test_server_urls_are_stored_normalized(given, stored):
    assert server_url(given) == stored


@pytest.mark.parametrize(
    "given, message",
    [
        ("repo.example", "use http://HOST or https://HOST"),
        ("ftp://repo.example", "use http://HOST or https://HOST"),
        ("https://alice:pw@repo.example", "no credentials"),
        ("https://repo.example/?x=1", "no credentials, query or fragment"),
    ],
)
def test_a_bad_server_url_is_a_usage_error(given, message):
    with pytest.raises(click.UsageError, match=message):
        server_url(given)


def test_config_dir_follows_repo_config_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("REPO_CONFIG_DIR", str(tmp_path / "c"))
    assert config_dir() == tmp_path / "c"


def test_a_login_round_trips_and_becomes_the_default(tmp_path):
    config = Config.load(tmp_path)
    assert config.default_server is None and config.logins == {}
    config.remember(Login(URL, "alice", 7))
    config.remember(Login("http://other", "bob", 9, "file"))
    config.save()
    again = Config.load(tmp_path)
    assert again.default_server == "http://other"
    assert again.logins == {URL: Login(URL, "alice", 7), "http://other":
                            Login("http://other", "bob", 9, "file")}  # fmt: skip
    assert stat.S_IMODE((tmp_path / "config.toml").stat().st_mode) == 0o600
    again.forget("http://other")
    assert again.default_server == URL
    again.forget(URL)
    assert again.default_server is None


def test_a_broken_config_file_says_which(tmp_path):
    (tmp_path / "config.toml").write_text("default_server = \n")
    with pytest.raises(RepoError, match="config.toml is not valid TOML"):
        Config.load(tmp_path)


@pytest.fixture
def logged_in(monkeypatch, tmp_path):
    """A config dir with a login to URL (its secret in the file store)."""
    monkeypatch.setenv("REPO_CONFIG_DIR", str(tmp_path))
    config = Config.load(tmp_path)
    config.remember(Login(URL, "alice", 1, "file"))
    config.save()


@pytest.mark.parametrize(
    "data_dir_given, server, expected",
    [
        (False, None, URL),  # logged in, no data dir: the server
        (True, None, None),  # a data dir: local
        (False, "http://other/", "http://other"),
    ],
)
def test_the_rule(logged_in, data_dir_given, server, expected):
    assert Where("./data", data_dir_given, server, False).server_url() == expected


def test_without_a_login_the_data_directory_is_the_default(monkeypatch, tmp_path):
    monkeypatch.setenv("REPO_CONFIG_DIR", str(tmp_path))
    assert Where("./data", False, None, False).server_url() is None


def test_a_login_without_its_secret_needs_authentication(logged_in):
    with pytest.raises(Unauthorized, match=f"Not logged in to {URL}: run `repo login {URL}`"):
        Where("./data", False, None, False).remote()


def test_repo_token_beats_the_stored_login(logged_in, monkeypatch):
    monkeypatch.setenv("REPO_TOKEN", "rp-from-the-environment")
    remote = Where("./data", False, None, False).remote()
    assert remote.from_env and remote.api.http.headers["Authorization"] == (
        "Bearer rp-from-the-environment"
    )


@pytest.mark.parametrize(
    "args, env",
    [
        (["--server", URL, "--data-dir", "d", "token", "list"], {}),
        (["token", "list"], {"REPO_URL": URL, "REPO_DATA_DIR": "d"}),
        (["--server", URL, "fsck"], {}),
    ],
)
def test_both_a_server_and_a_data_dir_is_a_usage_error(tmp_path, args, env):
    result = CliRunner().invoke(cli, args, env={"REPO_CONFIG_DIR": str(tmp_path), **env})
    assert result.exit_code == 2, result.output
    assert "--server" in result.output
