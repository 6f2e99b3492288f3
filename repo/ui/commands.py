"""The ready-to-copy commands the pages show: pip, uv and twine for Python, R and curl for R,
with this server's URL and the channel (or its snapshot at an instant) filled in. Pure: no
Flask, no database.

The token is `<TOKEN>` until there is a real one to show (right after it is made). It goes
where clients redact it: the Basic password for pip and twine (`__token__:TOKEN`, PyPI's
convention), the `X-Auth` header for curl, and the path for R, which cannot send headers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import urlsplit

PLACEHOLDER = "<TOKEN>"


@dataclass(frozen=True)
class Command:
    """One command line and what it does, e.g. ("Install with pip", "pip install ...")."""

    label: str
    text: str


@dataclass(frozen=True)
class Channel:
    """Where a channel's API answers: this server's scheme and host, the channel's name, and
    the snapshot's DATE when it is the channel as it was then (repo.snapshots)."""

    scheme: str
    host: str
    name: str
    snapshot: str = ""

    @classmethod
    def at(cls, host_url: str, name: str) -> Channel:
        """The channel `name` on the server whose root URL is `host_url` (`http://host:port/`)."""
        parts = urlsplit(host_url)
        return cls(parts.scheme, parts.netloc, name)

    def as_of(self, date: str) -> Channel:
        """The channel's snapshot at `date`, a day or an RFC 3339 instant: read-only."""
        return replace(self, snapshot=date)

    @property
    def _path(self) -> str:
        return f"{self.name}/snapshot/{self.snapshot}" if self.snapshot else self.name

    def url(self, path: str = "", token: str | None = None) -> str:
        """The channel's API URL, with `__token__:TOKEN@` in it when a token is given."""
        credentials = f"__token__:{token}@" if token else ""
        return f"{self.scheme}://{credentials}{self.host}/api/repo/{self._path}{path}"

    def cran(self, token: str | None) -> str:
        """The `repos` URL for R: the token rides in the path (`/api/repo/t/TOKEN/...`)."""
        prefix = f"t/{token}/" if token else ""
        return f"{self.scheme}://{self.host}/api/repo/{prefix}{self._path}/cran"


def installs(channel: Channel, kind: str, package: str, token: str = PLACEHOLDER, *,
             public: bool = False) -> list[Command]:  # fmt: skip
    """How to install `package` from the channel; from a public one also without a token."""
    ways = (
        [(None, " (public channel: no token)"), (token, " (with a token)")]
        if public
        else [(token, "")]
    )
    return [line for each, how in ways for line in _install(channel, kind, package, each, how)]


def _install(channel: Channel, kind: str, package: str, token: str | None,
             how: str) -> list[Command]:  # fmt: skip
    if kind == "cran":
        call = f'install.packages("{package}", repos = "{channel.cran(token)}")'
        return [Command(f"Install with R{how}", call)]
    index = channel.url("/simple", token)
    return [Command(f"Install with {tool.split()[0]}{how}",
                    f"{tool} install --index-url {index} {package}")
            for tool in ("pip", "uv pip")]  # fmt: skip


def uploads(channel: Channel, kind: str, token: str = PLACEHOLDER,
            r_file: str = "PKG_VERSION.tar.gz") -> list[Command]:  # fmt: skip
    """How to upload to the channel: twine for Python, curl for an R package `r_file`."""
    if kind == "pypi":
        text = f"twine upload --repository-url {channel.url()} dist/* -u __token__ -p {token}"
        return [Command("Upload with twine", text)]
    text = (f"curl -F filetype=cran_source_package -F content=@{r_file} {channel.url()}"
            f' -H "X-Auth: {token}"')  # fmt: skip
    return [Command("Upload with curl", text)]
