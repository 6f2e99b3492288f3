"""`repo login`, `repo logout` and `repo whoami`: getting a token for a server, keeping it,
giving it back.

A login is a token of scope `manage` labelled `repo-cli:USER@HOST`; logging in again with the
same label replaces it on the server, so logins never pile up. Nothing is ever prompted for
when stdin is not a terminal.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys

import click

from ..errors import RepoError, Unauthorized
from .client import Api
from .config import Login, server_url
from .credentials import IN_KEYRING
from .target import TOKEN_ENV, Where, api_path, store_for

pass_where = click.make_pass_decorator(Where)
# gh's words when GH_TOKEN is set (cli/cli, `gh auth login`/`logout`).
ENV_TOKEN_IN_USE = (f"The value of the {TOKEN_ENV} environment variable is being used for"
                    " authentication. To have repo {what}, first clear the value from the"
                    " environment.")  # fmt: skip


def _refuse_env_token(what: str) -> None:
    if os.environ.get(TOKEN_ENV):
        raise RepoError(ENV_TOKEN_IN_USE.format(what=what))


def _from_stdin(what: str) -> str:
    value = sys.stdin.read().rstrip("\r\n")
    if not value:
        raise click.UsageError(f"stdin gave no {what}")
    return value


def _ask(what: str, flag: str, ask):
    """Ask on a terminal; with no terminal there is nobody to ask (exit 4)."""
    if not sys.stdin.isatty():
        raise Unauthorized(f"No {what}: stdin is not a terminal, so repo does not prompt;"
                           f" give {flag}")  # fmt: skip
    return ask()


@click.command()
@click.argument("url")
@click.option("-u", "--username", help="Default: asked for on a terminal.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--token-stdin", is_flag=True,
              help="Read an existing token from stdin and keep it (no password).")  # fmt: skip
@click.option("--label", help="The token's label. Default: repo-cli:USER@HOSTNAME; a login with"
                              " the same label replaces that token.")  # fmt: skip
@click.option("--expires-in", metavar="DURATION", help="e.g. 90d, 12h. Default: 30d.")
@pass_where
def login(where: Where, url: str, username: str | None, password_stdin: bool,
          token_stdin: bool, label: str | None, expires_in: str | None) -> None:  # fmt: skip
    """Log in to a server: make a token (scope manage) and keep it for the next commands."""
    _refuse_env_token("store credentials instead")
    if password_stdin and token_stdin:
        raise click.UsageError("Give --password-stdin or --token-stdin, not both")
    url = server_url(url)
    if token_stdin:
        if label or expires_in:
            raise click.UsageError("--label and --expires-in make a new token: leave them out"
                                   " with --token-stdin")  # fmt: skip
        secret = _from_stdin("token")
        account = Api(url, secret).call("GET", api_path("account"))
        username, token = account["username"], account.get("token") or {}
    else:
        username = username or _ask("user name", "--username", lambda: click.prompt("Username"))
        token = _password_login(url, username, password_stdin, label, expires_in)
        secret = token["token"]
    _keep(where, url, username, secret, token)


def _password_login(url: str, username: str, password_stdin: bool, label: str | None,
                    expires_in: str | None) -> dict:  # fmt: skip
    """POST /api/auth/login: the new token's JSON, secret included."""
    if password_stdin:
        password = _from_stdin("password")
    else:
        prompt = f"Password for {username}: "
        password = _ask("password", "--password-stdin", lambda: getpass.getpass(prompt))
    body = {"username": username, "password": password,
            "label": label or f"repo-cli:{username}@{socket.gethostname()}"}  # fmt: skip
    if expires_in:
        body["expires_in"] = expires_in
    return Api(url).call("POST", api_path("auth", "login"), json=body)


def _keep(where: Where, url: str, username: str, secret: str, token: dict) -> None:
    """Store the secret and make `url` the default server; say where the secret went."""
    config = where.config
    previous = config.logins.get(url)
    store = store_for(config, previous)
    if previous and previous.username != username:
        store.delete(url, previous.username)
    stored_in = store.put(url, username, secret)
    # Where it went: a keyring that failed once (timed out, say) is not waited on again.
    kept = "keyring" if stored_in == IN_KEYRING else "file"
    config.remember(Login(url, username, token.get("id"), kept))
    config.save()
    expiry = f"expires {token['expires']}" if token.get("expires") else "does not expire"
    click.echo(f"Logged in to {url} as {username}: token {token.get('id')} '{token.get('label')}'"
               f" {expiry}; kept in {stored_in}", err=True)  # fmt: skip


@click.command()
@pass_where
def logout(where: Where) -> None:
    """Revoke the login's token on the server, then forget it here."""
    _refuse_env_token("erase the credentials it stores")
    url = where.server_url()
    login = where.config.logins.get(url) if url else None
    if login is not None and not store_for(where.config, login).get(url, login.username):
        # Its secret is gone (a keyring wiped, a file removed): nothing to revoke with, but
        # the login must not stay the default that every command then fails on.
        where.config.forget(url)
        where.config.save()
        click.echo(f"Logged out of {url}: no secret was kept for it, so its token was not"
                   f" revoked (token {login.token_id}: revoke it from another login)",
                   err=True)  # fmt: skip
        return
    remote = where.remote()
    login = remote.login
    try:
        remote.api.call("DELETE", api_path("tokens", "current"))
        done = "revoked its token"
    except RepoError as error:
        if error.status != 401:
            raise  # unreachable or refused otherwise: keep the login, so logout can be retried
        done = f"the server no longer took its token ({error.message.split(';')[0]})"
    store_for(remote.config, login).delete(remote.url, login.username)
    remote.config.forget(remote.url)
    remote.config.save()
    click.echo(f"Logged out of {remote.url}: {done}, and forgot it here", err=True)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the account as JSON.")
@pass_where
def whoami(where: Where, as_json: bool) -> None:
    """Who the token acts as on the server, and what the token may do."""
    remote = where.remote()
    account = remote.api.call("GET", api_path("account"))
    if as_json:
        click.echo(json.dumps({**account, "server": remote.url}, indent=2))
        return
    admin = " (admin)" if account.get("is_admin") else ""
    click.echo(f"{account['username']} on {remote.url}{admin}")
    token = account.get("token")
    if token:
        reach = f"channel {token['channel']}, " if token.get("channel") else ""
        source = TOKEN_ENV if remote.from_env else "the stored login"
        click.echo(f"token {token['id']} '{token['label']}': {reach}scope {token['scope']},"
                   f" expires {token['expires'] or 'never'} (from {source})")  # fmt: skip
