"""The `repo` command: serve and administer the data directory, and, from anywhere, work
with a server (repo.remote).

The shared verbs (channel, token, yank, unyank) have one set of arguments and one way of
printing on both sides; `_Local` and `remote.target.Remote` are their two faces. Errors go to
stderr; `token create` prints the token alone on stdout so that `TOKEN=$(repo token create
...)` works.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

import click

from . import accounts, config, create_app, files, maintenance
from .api import shapes
from .blobs import BlobStore
from .db import close_db, get_db
from .errors import Conflict, Invalid, NotFound, RepoError
from .mirror import prefetch, settings, sync
from .mirror import pypi as mirror_pypi
from .remote import account, commands
from .remote.client import exit_code
from .remote.target import Verbs, Where
from .snapshots import history as file_history

_GIVEN = (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)


class _Context(Where):
    """The root options: where the shared verbs go (Where), and the data directory's app."""

    _app = None

    def db(self):
        if self._app is None:
            self.refuse_server()
            config.keep_private(self.data_dir)
            self._app = create_app({"DATA_DIR": self.data_dir})
            self._app.app_context().push()
        return get_db()

    def blobs(self) -> BlobStore:
        self.db()
        return self._app.extensions["blobs"]

    def verbs(self) -> Verbs:
        """The shared verbs on the server this command goes to, else on the data directory."""
        return self.remote() if self.server_url() else _Local(self.db())


class _Local:
    """The shared verbs on the data directory (remote.target.Verbs)."""

    def __init__(self, db):
        self.db = db

    def create_channel(self, name: str, owner: str | None, public: bool,
                       description: str) -> None:  # fmt: skip
        if not owner:
            raise click.UsageError("Give --owner USER: on the data directory a channel is made"
                                   " for a named owner")  # fmt: skip
        owner_id = accounts.get_user(self.db, owner)["id"]
        accounts.create_channel(self.db, name, owner_id, public, description)

    def grant(self, channel: str, user: str, role: str) -> None:
        accounts.grant(self.db, _channel(self.db, channel)["id"],
                       accounts.get_user(self.db, user)["id"], role)  # fmt: skip

    def create_token(self, user: str | None, channel: str | None, scope: str | None,
                     expires_in: str | None, label: str) -> str:  # fmt: skip
        if not user:
            raise click.UsageError("Give USER: on the data directory a token is made for a"
                                   " named user")  # fmt: skip
        user_id = accounts.get_user(self.db, user)["id"]
        channel_id = _channel(self.db, channel)["id"] if channel else None
        expires = accounts.parse_duration(expires_in) if expires_in else None
        return accounts.create_token(self.db, user_id, channel_id, scope, expires, label)[1]

    def list_tokens(self, user: str | None) -> list[dict]:
        user_id = accounts.get_user(self.db, user)["id"] if user else None
        return accounts.list_tokens(self.db, user_id)

    def revoke_token(self, token_id: int) -> None:
        accounts.revoke_token(self.db, token_id)

    def set_yanked(self, channel: str, filename: str, yanked: bool,
                   reason: str | None) -> None:  # fmt: skip
        files.set_yanked(self.db, _channel(self.db, channel)["id"], filename, yanked, reason)

    def history(self, channel: str, limit: int | None) -> list[dict]:
        rows = file_history.of_channel(self.db, _channel(self.db, channel)["id"], limit)
        return [shapes.event(row) for row in rows]


def _channel(db, name: str):
    channel = accounts.find_channel(db, name)
    if channel is None:
        raise NotFound(f"Channel '{name}' not found")
    return channel


@click.group()
@click.option(
    "--data-dir", envvar="REPO_DATA_DIR", default="./data", show_default=True,
    help="Database and blob directory (REPO_DATA_DIR).",
)  # fmt: skip
@click.option("--server", envvar="REPO_URL", metavar="URL",
              help="Send the shared verbs to this server (REPO_URL).")  # fmt: skip
@click.pass_context
def cli(ctx: click.Context, data_dir: str, server: str | None) -> None:
    """repo: private channels of Python and R packages.

    \b
    Local or remote, one rule:
    - serve, user, fsck, gc, backup, restore and mirror work on the data directory.
    - The shared verbs (channel, token, yank, unyank, package, upload, whoami, logout) go to
      a server when --server or REPO_URL names one, or when you have logged in (repo login
      URL) and gave no --data-dir or REPO_DATA_DIR; else to the data directory. Giving both
      is a usage error.
    - REPO_TOKEN, when set, is the token used, whatever login is stored.
    """
    ctx.obj = _Context(
        data_dir, ctx.get_parameter_source("data_dir") in _GIVEN, server,
        ctx.get_parameter_source("server") == click.core.ParameterSource.COMMANDLINE,
    )  # fmt: skip


@cli.command()
@click.option("--bind", envvar="REPO_BIND", default="127.0.0.1:8000", show_default=True)
@click.option("--workers", envvar="REPO_WORKERS", type=int, default=2, show_default=True)
@click.option("--threads", envvar="REPO_THREADS", type=int, default=8, show_default=True)
@click.pass_obj
def serve(obj: _Context, bind: str, workers: int, threads: int) -> None:
    """Start the server (gunicorn); on a first start, create the user admin."""
    from .server import Server, options

    db = obj.db()
    if accounts.user_count(db) == 0:
        password = os.environ.get("REPO_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        try:
            accounts.create_user(db, "admin", password, admin=True)
        except Conflict:
            pass  # another server on the same database made it at the same moment
        else:
            click.echo(f"Created user 'admin' with password: {password}")
            click.echo("It is shown only this once.")
    close_db()
    click.echo(f"repo serving data from {obj.data_dir}")
    Server(obj._app, options(bind, workers, threads)).run()


@cli.group()
def user() -> None:
    """Users."""


@user.command("create")
@click.argument("name")
@click.option("--password", help="Default: a random one, printed once.")
@click.option("--admin", is_flag=True, help="May do everything in every channel.")
@click.pass_obj
def user_create(obj: _Context, name: str, password: str | None, admin: bool) -> None:
    """Create a user."""
    chosen = password or secrets.token_urlsafe(12)
    accounts.create_user(obj.db(), name, chosen, admin)
    click.echo(f"Created user '{name}'" + ("" if password else f" with password: {chosen}"))


@cli.group()
def channel() -> None:
    """Channels."""


@channel.command("create")
@click.argument("name")
@click.option("--owner", help="User who owns the channel (data directory only; on a server: you).")
@click.option("--public/--private", default=False, help="Readable without credentials, or not.")
@click.option("--description", default="", help="What the channel holds.")
@click.pass_obj
def channel_create(obj: _Context, name: str, owner: str | None, public: bool,
                   description: str) -> None:  # fmt: skip
    """Create a channel (private unless --public)."""
    obj.verbs().create_channel(name, owner, public, description)
    click.echo(f"Created {'public' if public else 'private'} channel '{name}'")


@channel.command("grant")
@click.argument("channel_name", metavar="CHANNEL")
@click.argument("user_name", metavar="USER")
@click.option("--role", required=True, type=click.Choice(accounts.ROLES))
@click.pass_obj
def channel_grant(obj: _Context, channel_name: str, user_name: str, role: str) -> None:
    """Give a user a role in a channel."""
    obj.verbs().grant(channel_name, user_name, role)
    click.echo(f"User '{user_name}' is now {role} in channel '{channel_name}'")


@channel.command("history")
@click.argument("channel_name", metavar="CHANNEL")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Only the newest N events.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_obj
def channel_history(obj: _Context, channel_name: str, limit: int | None, as_json: bool) -> None:
    """List a channel's uploads, yanks, unyanks and deletes, oldest first, with their times
    (each one a snapshot DATE that shows the channel just after it) and who made them."""
    events = obj.verbs().history(channel_name, limit)
    if as_json:
        click.echo(json.dumps(events, indent=2))
        return
    for event in events:
        click.echo(f"{event['at']}  {event['event']:<6} {event['family']:<6}"
                   f" {event['package']:<24} {event['version']:<12} {event['filename']:<48}"
                   f" {event['actor'] or '-'}")  # fmt: skip


@cli.group()
def token() -> None:
    """Tokens."""


@token.command("create")
@click.argument("user_name", metavar="[USER]", required=False)
@click.option("--channel", "channel_name", help="Make a channel token for this channel.")
@click.option("--scope", type=click.Choice(accounts.SCOPES),
              help="read or write; a user token also manage. Required on a server and for a"
                   " channel token; a local user token defaults to manage.")  # fmt: skip
@click.option("--expires-in", help="A duration: 90d, 12h, 30m or 45s.")
@click.option("--label", default="", help="What the token is for.")
@click.pass_obj
def token_create(obj: _Context, user_name: str | None, channel_name: str | None,
                 scope: str | None, expires_in: str | None, label: str) -> None:  # fmt: skip
    """Create a token and print it (only this once). USER: required on the data directory;
    on a server it is you unless an admin names another user."""
    click.echo(obj.verbs().create_token(user_name, channel_name, scope, expires_in, label))


@token.command("list")
@click.argument("user_name", metavar="[USER]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_obj
def token_list(obj: _Context, user_name: str | None, as_json: bool) -> None:
    """List tokens (never their secrets); on a server your own, or USER's for an admin."""
    rows = obj.verbs().list_tokens(user_name)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        where = f"{row['channel']}:{row['scope']}" if row["channel"] else f"user:{row['scope']}"
        state = "revoked" if row["revoked"] else f"expires {row['expires'] or 'never'}"
        click.echo(f"{row['id']:>5}  {row['user']:<16} {where:<24} {state:<40} {row['label']}")


@token.command("revoke")
@click.argument("token_id", type=int)
@click.pass_obj
def token_revoke(obj: _Context, token_id: int) -> None:
    """Revoke a token; it is refused from the next request on."""
    obj.verbs().revoke_token(token_id)
    click.echo(f"Revoked token {token_id}")


@cli.group()
def mirror() -> None:
    """Mirror channels: a channel that also serves an upstream index, cached."""


def _duration(_ctx, _param, value: str | None):
    return accounts.parse_duration(value) if value else None


@mirror.command("create")
@click.argument("channel_name", metavar="CHANNEL")
@click.option("--type", "kind", required=True, type=click.Choice(settings.KINDS))
@click.option("--source", required=True, help="The upstream's root: .../simple/ or a CRAN URL.")
@click.option("--ttl", callback=_duration, help="Reuse a page this long: 10m (pypi), 1h (cran).")
@click.option("--mode", type=click.Choice(settings.MODES), default="passive", show_default=True)
@click.option("--file-host", "file_hosts", multiple=True,
              help="Another host the upstream's files live on (repeatable).")  # fmt: skip
@click.option("--username", help="Upstream user name (sent to the source's host only).")
@click.option("--password", help="Upstream password or token (never shown or logged).")
@click.option("--quota", metavar="SIZE", callback=lambda _c, _p, v: v and settings.parse_size(v),
              help="Keep at most this many bytes of cached files (50G, 500M), evicting the"
                   " least recently downloaded.")  # fmt: skip
@click.option("--min-age", "min_age", metavar="DURATION", callback=_duration,
              help="Hide upstream files uploaded less recently (7d; pypi only).")  # fmt: skip
@click.option("--sync", "sync_file", type=click.File(), metavar="FILE",
              help="Active: what to sync, a requirements file (pypi) or R package names, one"
                   " per line (cran).")  # fmt: skip
@click.option("--every", callback=_duration, metavar="DURATION",
              help="Active: sync this often (default 24h).")  # fmt: skip
@click.pass_obj
def mirror_create(obj: _Context, channel_name: str, kind: str, source: str, ttl, mode: str,
                  file_hosts: tuple[str, ...], username: str | None, password: str | None,
                  quota: int | None, min_age, sync_file, every) -> None:  # fmt: skip
    """Make CHANNEL mirror an upstream index of one type."""
    db = obj.db()
    sync = _sync_list(kind, sync_file) if sync_file else ()
    made = settings.create(db, _channel(db, channel_name)["id"], kind, source, ttl=ttl,
                           mode=mode, file_hosts=file_hosts, username=username,
                           password=password, quota=quota, min_age=min_age, sync=sync,
                           every=every)  # fmt: skip
    click.echo(f"Channel '{channel_name}' mirrors {made.source} ({kind}, ttl {made.ttl} s)")


@mirror.command("list")
@click.argument("channel_name", metavar="[CHANNEL]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_obj
def mirror_list(obj: _Context, channel_name: str | None, as_json: bool) -> None:
    """List the upstreams and their state (never their credentials)."""
    db = obj.db()
    rows = settings.listing(db, _channel(db, channel_name)["id"] if channel_name else None)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = f"error {row['last_error']}" if row["last_error"] else "ok"
        cached = f"{row['cached_projects']} cached, {row['cached_bytes']} bytes"
        if row["quota"] is not None:
            cached += f" (quota {row['quota']})"
        age = f"  min-age {row['min_age']}s" if row["min_age"] is not None else ""
        click.echo(f"{row['channel']:<16} {row['type']:<5} {row['source']:<40}"
                   f" ttl {row['ttl']}s{age}  {cached}  {state}")  # fmt: skip


@mirror.command("remove")
@click.argument("channel_name", metavar="CHANNEL")
@click.option("--type", "kind", required=True, type=click.Choice(settings.KINDS))
@click.pass_obj
def mirror_remove(obj: _Context, channel_name: str, kind: str) -> None:
    """Stop mirroring; cached files not referenced otherwise go with `repo gc`."""
    db = obj.db()
    settings.remove(db, _channel(db, channel_name)["id"], kind)
    click.echo(f"Channel '{channel_name}' no longer mirrors a {kind} upstream")


def _add_rules(obj: _Context, channel_name: str, kind: str, patterns: tuple[str, ...],
               rule: str) -> None:  # fmt: skip
    db = obj.db()
    channel_id = _channel(db, channel_name)["id"]
    for pattern in patterns:
        settings.add_rule(db, channel_id, kind, pattern, rule)


_KIND_OPTION = click.option("--type", "kind", type=click.Choice(settings.KINDS),
                            default="pypi", show_default=True)  # fmt: skip


@mirror.command("reserve")
@click.argument("channel_name", metavar="CHANNEL")
@click.argument("patterns", metavar="NAME|PREFIX*...", nargs=-1, required=True)
@_KIND_OPTION
@click.pass_obj
def mirror_reserve(obj: _Context, channel_name: str, patterns: tuple[str, ...], kind: str) -> None:
    """Never ask upstream for these names (or prefixes like acme-*): they are private."""
    _add_rules(obj, channel_name, kind, patterns, "reserve")
    click.echo(f"Reserved {', '.join(patterns)} in channel '{channel_name}'")


@mirror.command("merge-upstream")
@click.argument("channel_name", metavar="CHANNEL")
@click.argument("names", metavar="NAME...", nargs=-1, required=True)
@_KIND_OPTION
@click.pass_obj
def mirror_merge(obj: _Context, channel_name: str, names: tuple[str, ...], kind: str) -> None:
    """Show upstream releases of these private names too (off by default: private wins)."""
    _add_rules(obj, channel_name, kind, names, "merge")
    click.echo(f"Upstream releases of {', '.join(names)} now merge into channel '{channel_name}'")


@mirror.command("refresh")
@click.argument("channel_name", metavar="CHANNEL")
@click.argument("name", metavar="[NAME]", required=False)
@_KIND_OPTION
@click.pass_obj
def mirror_refresh(obj: _Context, channel_name: str, name: str | None, kind: str) -> None:
    """Check project NAME upstream now; without NAME, every cached page on its next request."""
    db = obj.db()
    target = _channel(db, channel_name)
    upstream = settings.find(db, target["id"], kind)
    if upstream is None:
        raise NotFound(f"Channel '{channel_name}' mirrors no {kind} upstream")
    if name is None:
        count = settings.mark_stale(db, upstream.id)
        click.echo(f"{count} cached pages of channel '{channel_name}' are checked on next request")
        return
    if kind != "pypi":
        raise Invalid("A CRAN index is checked whole: leave out NAME")
    page = mirror_pypi.refresh(obj._app, target, name)
    serial = f" (serial {page['serial']})" if page["serial"] is not None else ""
    state = "found" if page["state"] == "found" else "not found"
    click.echo(f"Checked '{page['key']}' upstream: {state}{serial}")


def _sync_list(kind: str, handle) -> tuple[str, ...]:
    """A sync file's entries: requirements as pip reads them, or R names (# comments)."""
    lines = list(handle)
    if kind == "pypi":
        return tuple(str(requirement) for requirement in prefetch.requirements(lines))
    return tuple(name for line in lines if (name := line.split("#", 1)[0].strip()))


@mirror.command("sync")
@click.argument("channel_name", metavar="CHANNEL")
@_KIND_OPTION
@click.pass_obj
def mirror_sync(obj: _Context, channel_name: str, kind: str) -> None:
    """Run an active mirror's sync now (the server runs it on its schedule)."""
    db = obj.db()
    found = settings.find(db, _channel(db, channel_name)["id"], kind)
    if found is None or found.mode != "active":
        raise Invalid(f"Channel '{channel_name}' has no active {kind} mirror")
    result = sync.run(obj._app, found.id, click.echo)
    if result is None:
        raise Conflict("A server worker is running this sync now: try again when it is done")
    click.echo(result.text)
    if result.failed:
        sys.exit(1)


@mirror.command("prefetch")
@click.argument("channel_name", metavar="CHANNEL")
@click.argument("packages", metavar="[PKG...]", nargs=-1)
@click.option("-r", "--requirement", "requirement_files", type=click.File(), multiple=True,
              help="Cache what this requirements file names (repeatable).")  # fmt: skip
@click.option("--cran", "is_cran", is_flag=True, help="PKG... are R packages to cache.")
@click.pass_obj
def mirror_prefetch(obj: _Context, channel_name: str, packages: tuple[str, ...],
                    requirement_files, is_cran: bool) -> None:  # fmt: skip
    """Fetch into the cache now, one file at a time: the newest version each requirement
    allows (pip's requirements files, or requirements as arguments), or the current source
    package of each R package (--cran)."""
    db = obj.db()
    target = _channel(db, channel_name)
    if (is_cran and (requirement_files or not packages)) or not (packages or requirement_files):
        raise Invalid("Give -r REQUIREMENTS (or requirements) for Python, or --cran PKG... for R")
    if is_cran:
        outcome = prefetch.cran(obj._app, target, list(packages), click.echo)
    else:
        lines = [line for handle in requirement_files for line in handle]
        wanted = prefetch.requirements([*lines, *packages])
        outcome = prefetch.python(obj._app, target, wanted, click.echo)
    click.echo(f"{outcome.cached} files cached, {outcome.problems} problems")
    if outcome.problems:
        sys.exit(1)


@cli.command()
@click.argument("channel_name", metavar="CHANNEL")
@click.argument("filename")
@click.option("--reason", default="", help="Shown to pip and uv users.")
@click.pass_obj
def yank(obj: _Context, channel_name: str, filename: str, reason: str) -> None:
    """Yank a file (PEP 592): installers skip it unless it is pinned exactly."""
    obj.verbs().set_yanked(channel_name, filename, True, reason)
    click.echo(f"Yanked {filename}")


@cli.command()
@click.argument("channel_name", metavar="CHANNEL")
@click.argument("filename")
@click.pass_obj
def unyank(obj: _Context, channel_name: str, filename: str) -> None:
    """Undo a yank."""
    obj.verbs().set_yanked(channel_name, filename, False, None)
    click.echo(f"Unyanked {filename}")


@cli.command()
@click.pass_obj
def fsck(obj: _Context) -> None:
    """Verify every blob's sha256 against the database; exit 1 on a missing or corrupt one."""
    report = maintenance.fsck(obj.db(), obj.blobs())
    for sha256 in report.missing:
        click.echo(f"missing {sha256}", err=True)
    for sha256 in report.corrupt:
        click.echo(f"corrupt {sha256}", err=True)
    click.echo(f"checked {report.checked} blobs: {len(report.missing)} missing, "
               f"{len(report.corrupt)} corrupt")  # fmt: skip
    if not report.ok:
        sys.exit(1)


@cli.command()
@click.option(
    "--grace",
    type=float,
    default=maintenance.DEFAULT_GRACE,
    show_default=True,
    help="Spare anything younger than this many seconds (uploads in flight).",
)
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@click.pass_obj
def gc(obj: _Context, grace: float, dry_run: bool) -> None:
    """Remove blobs nothing references, temp files of uploads that died and old R indexes."""
    removed = maintenance.gc(obj.db(), obj.blobs(), Path(obj.data_dir), grace, dry_run)
    for path in removed:
        click.echo(f"{'would remove' if dry_run else 'removed'} {path}")
    click.echo(f"{len(removed)} files {'to remove' if dry_run else 'removed'}")


@cli.command()
@click.argument("destination", type=click.Path(path_type=Path))
@click.pass_obj
def backup(obj: _Context, destination: Path) -> None:
    """Copy a consistent snapshot of the database and its blobs to a new directory."""
    if destination.exists():
        raise Invalid(f"{destination} exists: back up into a new directory")
    count = maintenance.backup(obj.db(), obj.blobs(), destination, Path(obj.data_dir))
    click.echo(f"backed up the database and {count} blobs to {destination}")


@cli.command()
@click.argument("source", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.pass_obj
def restore(obj: _Context, source: Path) -> None:
    """Restore a backup into the (empty) data dir; then run fsck."""
    obj.refuse_server()
    config.keep_private(obj.data_dir)
    try:
        count = maintenance.restore(source, Path(obj.data_dir))
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        raise Invalid(str(error)) from None
    click.echo(f"restored the database and {count} blobs into {obj.data_dir}")


for _command in (account.login, account.logout, account.whoami, commands.upload,
                 commands.package):  # fmt: skip
    cli.add_command(_command)
for _command in (commands.channel_list, commands.channel_show, commands.channel_edit,
                 commands.channel_remove):  # fmt: skip
    channel.add_command(_command)
token.add_command(commands.token_rotate)


def main() -> None:
    """Entry point of the `repo` console script: a refusal's message on stderr, and its exit
    status (1; 3 not found or forbidden, 4 not authenticated, 5 conflict)."""
    try:
        cli(standalone_mode=True)
    except RepoError as error:
        click.echo(f"repo: {error.message}", err=True)
        sys.exit(exit_code(error))
