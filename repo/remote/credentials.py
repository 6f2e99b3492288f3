"""Where a login's secret is kept: the system keyring when one is usable, else
`credentials.toml`, mode 0600 in a 0700 directory, never the plain config file.

Every keyring call runs in a daemon thread given `timeout` seconds: a locked or absent Secret
Service can block for ever (twine#338, poetry#1917), and a command must not. When the keyring
fails or is silent, the file is used instead and the user is told once.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import tomli_w

from ..errors import RepoError
from .config import write_private

KEYRING_TIMEOUT = 5.0
CREDENTIALS_FILE = "credentials.toml"
KEYRING_ENV = "REPO_KEYRING"
IN_KEYRING = "the system keyring"


class KeyringUnavailable(Exception):
    """The keyring cannot be used now: an error, or no answer in time."""


class NoKeyring(KeyringUnavailable):
    """No keyring to use: the package is not installed (it is an optional extra) or no backend
    that stores is configured (null, or keyring's fail backend)."""


def keyring_wanted(mode: str) -> bool:
    """Whether to try the keyring at all: never with REPO_KEYRING=0 or store `file`; with
    `auto`, not in CI and not on a Linux without a session bus (no Secret Service there)."""
    if os.environ.get(KEYRING_ENV) == "0" or mode == "file":
        return False
    if mode == "keyring":
        return True
    no_bus = sys.platform.startswith("linux") and not os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    return not (os.environ.get("CI") or no_bus)


def _warn(message: str) -> None:
    click.echo(f"repo: warning: {message}", err=True)


def _in_thread(call: Callable[[], Any], timeout: float) -> Any:
    """`call()`'s result, or KeyringUnavailable when it raises or takes longer than `timeout`.

    A daemon thread, not a ThreadPoolExecutor: the executor's threads are joined at exit, so a
    blocked call would hang the command after all."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except Exception as error:  # noqa: BLE001 - every keyring failure means: use the file
            outcome["error"] = error

    worker = threading.Thread(target=run, name="repo-keyring", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise KeyringUnavailable(f"it did not answer in {timeout:g} s")
    error = outcome.get("error")
    if isinstance(error, KeyringUnavailable):
        raise error
    if error is not None:
        raise KeyringUnavailable(str(error) or type(error).__name__) from error
    return outcome.get("value")


def _backend():
    """The keyring backend to use; NoKeyring when there is none that stores."""
    try:
        import keyring
        from keyring.backends import fail, null
    except ImportError:
        raise NoKeyring("the keyring package is not installed") from None
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring | null.Keyring):
        raise NoKeyring(f"no backend that stores ({type(backend).__module__})")
    return backend


def _service(url: str) -> str:
    # gh's `gh:<host>` pattern: one entry per server, the user name as the keyring's user.
    return f"repo:{url}"


class SecretStore:
    """get/put/delete of the token of (server URL, user name)."""

    def __init__(self, directory: Path, mode: str = "auto", timeout: float = KEYRING_TIMEOUT,
                 warn: Callable[[str], None] = _warn):  # fmt: skip
        self.path = directory / CREDENTIALS_FILE
        self._mode = mode
        self._use_keyring = keyring_wanted(mode)
        self._timeout = timeout
        self._warn = warn

    def get(self, url: str, username: str) -> str | None:
        if self._use_keyring:
            try:
                secret = self._keyring(lambda b: b.get_password(_service(url), username))
                if secret:
                    return secret
            except KeyringUnavailable as error:
                self._fall_back(error)
        return self._read().get(url, {}).get(username)

    def put(self, url: str, username: str, secret: str) -> str:
        """Keep the secret; return where it went, to tell the user."""
        if self._use_keyring:
            try:
                self._keyring(lambda b: b.set_password(_service(url), username, secret))
                self._drop_from_file(url, username)
                return IN_KEYRING
            except KeyringUnavailable as error:
                self._fall_back(error)
        entries = self._read()
        entries.setdefault(url, {})[username] = secret
        self._write(entries)
        return f"{self.path} (plain text, readable by you only)"

    def delete(self, url: str, username: str) -> None:
        if self._use_keyring:
            try:
                self._keyring(lambda b: _delete_quietly(b, _service(url), username))
            except KeyringUnavailable as error:
                self._fall_back(error)
        self._drop_from_file(url, username)

    def _keyring(self, operation: Callable[[Any], Any]) -> Any:
        return _in_thread(lambda: operation(_backend()), self._timeout)

    def _fall_back(self, error: KeyringUnavailable) -> None:
        # Said once: from here on this command uses the file only. No keyring at all is no
        # news unless the config asked for one.
        self._use_keyring = False
        if not isinstance(error, NoKeyring) or self._mode == "keyring":
            self._warn(f"cannot use the system keyring ({error}); using {self.path} instead")

    def _read(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        self._tighten(self.path.parent, 0o700)
        self._tighten(self.path, 0o600)
        try:
            return tomllib.loads(self.path.read_text(encoding="utf-8")).get("servers", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise RepoError(f"{self.path} is not valid TOML ({error}): remove it and log in"
                            " again") from None  # fmt: skip

    def _write(self, entries: dict[str, dict[str, str]]) -> None:
        kept = {url: users for url, users in entries.items() if users}
        if self.path.parent.exists():
            self._tighten(self.path.parent, 0o700)  # made before, by hand or another tool
        if kept:
            write_private(self.path, tomli_w.dumps({"servers": kept}))
        else:
            self.path.unlink(missing_ok=True)

    def _drop_from_file(self, url: str, username: str) -> None:
        entries = self._read()
        if entries.get(url, {}).pop(username, None) is not None:
            self._write(entries)

    def _tighten(self, path: Path, mode: int) -> None:
        current = stat.S_IMODE(path.stat().st_mode)
        if current & 0o077:
            path.chmod(mode)
            self._warn(f"{path} was open to other users (mode {current:o}): made it {mode:o}")


def _delete_quietly(backend: Any, service: str, username: str) -> None:
    from keyring.errors import PasswordDeleteError

    try:
        backend.delete_password(service, username)
    except PasswordDeleteError:
        pass  # nothing was kept there
