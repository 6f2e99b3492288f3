"""The commands only a server answers: channel list/show/edit/remove, token rotate,
package list and upload. Each parses, makes one or a few API calls, and prints: data on
stdout, messages on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import RepoError
from . import upload as uploads
from .account import pass_where
from .target import TOKEN_ENV, Where, api_path, store_for

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
_PRIVACY = click.option("--public/--private", "public", default=None,
                        help="Readable without credentials, or by members only.")  # fmt: skip


def _print_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2))


@click.command("list")
@click.option("--mine", is_flag=True, help="Only channels you are a member of.")
@_JSON
@pass_where
def channel_list(where: Where, mine: bool, as_json: bool) -> None:
    """List the channels you may see."""
    items = where.remote().api.items(api_path("channels"), {"mine": 1} if mine else None)
    if as_json:
        _print_json(items)
        return
    for item in items:
        role = item["my_role"] or "-"
        counts = f"{item['package_count']:>5} packages {item['file_count']:>6} files"
        click.echo(f"{item['name']:<24} {item['privacy']:<8} {role:<6} {counts}")


def install_commands(channel: dict) -> list[str]:
    """Ready pip/uv/twine/R commands for a channel, with $REPO_TOKEN where a token goes (never
    the secret itself). The token rides in pip's password slot, which pip masks in its log."""
    urls, public = channel["urls"], channel["privacy"] == "public"
    scheme, _, rest = urls["simple"].partition("://")
    index = urls["simple"] if public else f"{scheme}://__token__:${TOKEN_ENV}@{rest}"
    root, _, tail = urls["cran"].partition("/api/repo/")
    cran = (f'"{urls["cran"]}"' if public
            else f'paste0("{root}/api/repo/t/", Sys.getenv("{TOKEN_ENV}"), "/{tail}")')  # fmt: skip
    return [
        f'pip install --index-url "{index}" PACKAGE',
        f'uv pip install --index-url "{index}" PACKAGE',
        # The secret in twine's own variable, not on its command line (visible in `ps`).
        f'TWINE_USERNAME=__token__ TWINE_PASSWORD="${TOKEN_ENV}" twine upload'
        f" --repository-url {urls['upload']} dist/*",
        f"Rscript -e 'install.packages(\"PACKAGE\", repos = {cran})'",
    ]


@click.command("show")
@click.argument("name")
@_JSON
@pass_where
def channel_show(where: Where, name: str, as_json: bool) -> None:
    """Show a channel, and the commands that install from and upload to it."""
    channel = where.remote().api.call("GET", api_path("channels", name))
    if as_json:
        _print_json(channel)
        return
    role = f", you are {channel['my_role']}" if channel.get("my_role") else ""
    click.echo(f"{channel['name']} ({channel['privacy']}{role})")
    if channel.get("description"):
        click.echo(f"  {channel['description']}")
    click.echo(f"  {channel['package_count']} packages, {channel['file_count']} files,"
               f" {channel['size_bytes']} bytes; created {channel['created']}")  # fmt: skip
    if channel["privacy"] != "public":
        click.echo(f"With {TOKEN_ENV} set to a token of this channel (repo token create"
                   f" --channel {name} --scope read):")  # fmt: skip
    for line in install_commands(channel):
        click.echo(f"  {line}")


@click.command("edit")
@click.argument("name")
@_PRIVACY
@click.option("--description", help="What the channel holds.")
@pass_where
def channel_edit(where: Where, name: str, public: bool | None, description: str | None) -> None:
    """Change a channel's privacy or description."""
    body: dict[str, str] = {}
    if public is not None:
        body["privacy"] = "public" if public else "private"
    if description is not None:
        body["description"] = description
    if not body:
        raise click.UsageError("Nothing to change: give --public, --private or --description")
    channel = where.remote().api.call("PATCH", api_path("channels", name), json=body)
    click.echo(f"Channel '{name}' is {channel['privacy']}: '{channel['description']}'")


@click.command("remove")
@click.argument("name")
@click.option("--force", is_flag=True, help="Also when it still has files.")
@pass_where
def channel_remove(where: Where, name: str, force: bool) -> None:
    """Delete a channel (one with files only with --force)."""
    where.remote().api.call("DELETE", api_path("channels", name),
                            params={"force": 1} if force else None)  # fmt: skip
    click.echo(f"Removed channel '{name}'")


@click.command("rotate")
@click.argument("token_id", type=int)
@pass_where
def token_rotate(where: Where, token_id: int) -> None:
    """Give a token a new secret and print it (the old one is refused from now on)."""
    remote = where.remote()
    answer = remote.api.call("POST", api_path("tokens", token_id, "rotate"))
    login = remote.login
    if login and not remote.from_env and login.token_id == token_id:
        store_for(remote.config, login).put(remote.url, login.username, answer["token"])
        click.echo("The stored login now uses the new secret", err=True)
    click.echo(answer["token"])


@click.group()
def package() -> None:
    """Packages of a channel."""


@package.command("list")
@click.argument("channel_name", metavar="CHANNEL")
@click.option("--family", type=click.Choice(("python", "cran")), help="Only one ecosystem.")
@click.option("-q", "query", help="Only names containing this.")
@_JSON
@pass_where
def package_list(where: Where, channel_name: str, family: str | None, query: str | None,
                 as_json: bool) -> None:  # fmt: skip
    """List a channel's packages and their versions."""
    params = {k: v for k, v in (("family", family), ("q", query)) if v}
    items = where.remote().api.items(api_path("channels", channel_name, "packages"), params)
    if as_json:
        _print_json(items)
        return
    for item in items:
        click.echo(f"{item['family']:<7} {item['display_name']:<32} {', '.join(item['versions'])}")


@click.command()
@click.option("-c", "--channel", "channel_name", required=True, help="Channel to upload to.")
@click.argument("paths", metavar="FILE...", nargs=-1, required=True,
                type=click.Path(path_type=Path, dir_okay=False))  # fmt: skip
@click.option("--skip-existing", is_flag=True,
              help="Go on past a file whose name the channel has with other content.")  # fmt: skip
@click.option("--platform", help="R binary build, when Built: names none (big-sur-arm64,"
                                 " noble-x86_64).")  # fmt: skip
@click.option("--rversion", help="R version X.Y of an R binary, when Built: names none.")
@pass_where
def upload(where: Where, channel_name: str, paths: tuple[Path, ...], skip_existing: bool,
           platform: str | None, rversion: str | None) -> None:  # fmt: skip
    """Upload wheels, sdists and R source or binary packages (what each is, is detected).

    The same file again is fine (nothing changes), as with twine."""
    files = [uploads.describe(path, platform, rversion) for path in paths]
    api = where.remote().api
    for item in files:
        try:
            status, answer = uploads.send(api, channel_name, item)
        except RepoError as error:
            if error.status != 409 or not skip_existing:
                raise RepoError(f"{item.path.name}: {error.message}", error.status) from None
            click.echo(f"Skipped {item.path.name}: {error.message}", err=True)
            continue
        where_to = f"{channel_name}/{answer['subdir']}" if answer.get("subdir") else channel_name
        done = "Uploaded" if status == 201 else "Already there (identical):"
        click.echo(f"{done} {answer['filename']} to {where_to} (sha256 {answer['sha256']})")
