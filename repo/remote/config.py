"""The remote command line's settings: `config.toml` in the user's config directory, naming the
servers logged in to and the default one.

Nothing secret is written here (the token is kept by repo.remote.credentials), so the file may
be shown or synced. Like gh's hosts.yml, a later login makes its server the default.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click
import httpx
import platformdirs
import tomli_w

from ..errors import RepoError

CONFIG_DIR_ENV = "REPO_CONFIG_DIR"
CONFIG_FILE = "config.toml"
# Where a login's secret goes: `auto` tries the keyring where one can work, `file` never does.
STORES = ("auto", "keyring", "file")


def config_dir() -> Path:
    """$REPO_CONFIG_DIR, else platformdirs' user config directory (~/.config/repo on Linux)."""
    override = os.environ.get(CONFIG_DIR_ENV)
    return Path(override) if override else platformdirs.user_config_path("repo", appauthor=False)


def server_url(text: str) -> str:
    """The root URL of a server as it is stored and compared: http(s), no credentials, no
    query, no trailing slash. A malformed one is a usage error."""
    try:
        url = httpx.URL(text.strip())
    except httpx.InvalidURL:
        # Never the URL itself in a message: it may hold a password, and CI logs keep stderr.
        raise click.UsageError("Invalid server URL: use http://HOST or https://HOST") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise click.UsageError("Invalid server URL: use http://HOST or https://HOST")
    if url.userinfo or url.query or url.fragment:
        raise click.UsageError(
            "Invalid server URL: give the server's root URL only (no credentials, query or"
            " fragment)"
        )
    return f"{url.scheme}://{url.netloc.decode('ascii')}{url.path.rstrip('/')}"


@dataclass
class Login:
    """One server logged in to: who, which token (by id; the secret is elsewhere), and where
    that secret is kept."""

    url: str
    username: str
    token_id: int | None = None
    credential_store: str = "auto"


@dataclass
class Config:
    """config.toml: the default server and one table per server logged in to."""

    path: Path
    default_server: str | None = None
    logins: dict[str, Login] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path) -> Config:
        """The config in `directory`; an empty one when there is no file yet."""
        path = directory / CONFIG_FILE
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise RepoError(f"{path} is not valid TOML ({error}): fix or remove it") from None
        try:
            servers = data.get("servers", {})
            logins = {url: Login(url=url, **table) for url, table in servers.items()}
        except TypeError as error:
            raise RepoError(f"{path} has an unknown setting ({error})") from None
        return cls(path, data.get("default_server"), logins)

    def save(self) -> None:
        servers = {url: {k: v for k, v in asdict(login).items() if k != "url" and v is not None}
                   for url, login in self.logins.items()}  # fmt: skip
        data: dict = {"default_server": self.default_server} if self.default_server else {}
        write_private(self.path, tomli_w.dumps({**data, "servers": servers}))

    def remember(self, login: Login) -> None:
        """Keep `login` and make its server the default."""
        self.logins[login.url] = login
        self.default_server = login.url

    def forget(self, url: str) -> None:
        """Drop the login to `url`; the default passes to another login, if any is left."""
        self.logins.pop(url, None)
        if self.default_server == url:
            self.default_server = next(iter(self.logins), None)


def write_private(path: Path, text: str) -> None:
    """Write `path` whole or not at all, readable by its owner only: a temp file made under
    umask 077 in the same 0700 directory, fsynced, then renamed over the old one."""
    old_umask = os.umask(0o077)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    finally:
        os.umask(old_umask)
