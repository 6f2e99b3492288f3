"""The one rule that says where a shared verb works, and the server's side of those verbs.

`serve`, `user create`, `fsck`, `gc`, `backup`, `restore` and `mirror` work on the data
directory. The shared verbs (channel, token, yank, unyank, package, upload, whoami, logout) go
to a server when `--server`/REPO_URL names one, or when the user has logged in and named no
`--data-dir`/REPO_DATA_DIR; otherwise to the data directory. Naming both is a usage error.
REPO_TOKEN, when set, is the token, whatever login is stored.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import Protocol
from urllib.parse import quote

import click

from ..errors import Unauthorized
from .client import Api
from .config import Config, Login, config_dir, server_url
from .credentials import SecretStore

TOKEN_ENV = "REPO_TOKEN"
BOTH = ("Give either --server/REPO_URL (a server) or --data-dir/REPO_DATA_DIR (this machine's"
        " data directory), not both")  # fmt: skip


def api_path(*segments: str | int) -> str:
    """/api/SEGMENT/...: each one quoted whole, so a name cannot add a path segment."""
    return "/api/" + "/".join(quote(str(segment), safe="") for segment in segments)


class Verbs(Protocol):
    """What the shared verbs do, on the data directory or on a server: same arguments, same
    answers, so that both print the same."""

    def create_channel(self, name: str, owner: str | None, public: bool,
                       description: str) -> None: ...  # fmt: skip

    def grant(self, channel: str, user: str, role: str) -> None: ...

    def create_token(self, user: str | None, channel: str | None, scope: str | None,
                     expires_in: str | None, label: str) -> str: ...  # fmt: skip

    def list_tokens(self, user: str | None) -> list[dict]: ...

    def revoke_token(self, token_id: int) -> None: ...

    def set_yanked(self, channel: str, filename: str, yanked: bool,
                   reason: str | None) -> None: ...  # fmt: skip

    def history(self, channel: str, limit: int | None) -> list[dict]: ...


class Where:
    """The root options of one `repo` command, and the rule applied to them."""

    def __init__(self, data_dir: str, data_dir_given: bool, server: str | None,
                 server_on_command_line: bool):  # fmt: skip
        self.data_dir = data_dir
        self.data_dir_given = data_dir_given
        self.server = server
        self.server_on_command_line = server_on_command_line

    @cached_property
    def config(self) -> Config:
        return Config.load(config_dir())

    def server_url(self) -> str | None:
        """The server a shared verb goes to; None: the data directory."""
        if self.server:
            if self.data_dir_given:
                raise click.UsageError(BOTH)
            return server_url(self.server)
        if self.data_dir_given:
            return None
        return self.config.default_server

    def refuse_server(self) -> None:
        """For the data-directory commands: an explicit --server is a mistake to point out
        (REPO_URL in the environment is not: it is there for the shared verbs)."""
        if self.server_on_command_line:
            name = click.get_current_context().command_path
            raise click.UsageError(f"`{name}` works on the data directory: leave out --server")

    def remote(self) -> Remote:
        """The server this command talks to, with its token; a usage error when none is named
        or logged in to, exit 4 when there is no token for it."""
        url = self.server_url()
        if url is None:
            name = click.get_current_context().command_path
            raise click.UsageError(
                f"`{name}` talks to a server: log in with `repo login URL`, or give"
                " --server URL (REPO_URL)"
            )
        return Remote.connect(url, self.config)


class Remote:
    """One server and the token used on it (REPO_TOKEN, else the stored login's)."""

    def __init__(self, url: str, config: Config, token: str, from_env: bool):
        self.url = url
        self.config = config
        self.login = config.logins.get(url)
        self.from_env = from_env
        hint = "" if from_env else f"log in again with `repo login {url}`"
        self.api = Api(url, token, unauthorized_hint=hint)

    @classmethod
    def connect(cls, url: str, config: Config) -> Remote:
        env_token = os.environ.get(TOKEN_ENV, "").strip()
        if env_token:
            return cls(url, config, env_token, from_env=True)
        login = config.logins.get(url)
        secret = store_for(config, login).get(url, login.username) if login else None
        if not secret:
            raise Unauthorized(f"Not logged in to {url}: run `repo login {url}`, or set"
                               f" {TOKEN_ENV}")  # fmt: skip
        return cls(url, config, secret, from_env=False)

    # --- the shared verbs (Verbs) ----------------------------------------------------------

    def create_channel(self, name: str, owner: str | None, public: bool,
                       description: str) -> None:  # fmt: skip
        if owner:
            raise click.UsageError("--owner is for the data directory: a channel made on a server"
                                   " is yours (add owners with `repo channel grant`)")  # fmt: skip
        body = {"name": name, "privacy": "public" if public else "private",
                "description": description}  # fmt: skip
        self.api.call("POST", api_path("channels"), json=body)

    def grant(self, channel: str, user: str, role: str) -> None:
        self.api.call("PUT", api_path("channels", channel, "members", user), json={"role": role})

    def create_token(self, user: str | None, channel: str | None, scope: str | None,
                     expires_in: str | None, label: str) -> str:  # fmt: skip
        if scope is None:
            raise click.UsageError("Give --scope read, write or manage: a server makes no token"
                                   " of unstated reach")  # fmt: skip
        optional = {"user": user, "channel": channel, "expires_in": expires_in}
        body = {"scope": scope, "label": label, **{k: v for k, v in optional.items() if v}}
        return self.api.call("POST", api_path("tokens"), json=body)["token"]

    def list_tokens(self, user: str | None) -> list[dict]:
        return self.api.items(api_path("tokens"), {"user": user} if user else None)

    def revoke_token(self, token_id: int) -> None:
        self.api.call("DELETE", api_path("tokens", token_id))

    def set_yanked(self, channel: str, filename: str, yanked: bool,
                   reason: str | None) -> None:  # fmt: skip
        body = {"yanked": True, "yanked_reason": reason or ""} if yanked else {"yanked": False}
        self.api.call("PATCH", api_path("channels", channel, "files", filename), json=body)

    def history(self, channel: str, limit: int | None) -> list[dict]:
        return self.api.newest(api_path("channels", channel, "history"), limit)


def store_for(config: Config, login: Login | None) -> SecretStore:
    """The secret store of a login (where its config says), beside config.toml."""
    return SecretStore(config.path.parent, login.credential_store if login else "auto")
