"""Where the remote command line keeps a login's secret: a keyring backend (real ones,
registered with keyring.set_keyring), else credentials.toml 0600 in a 0700 directory."""

from __future__ import annotations

import stat
import threading
import tomllib

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import null

from repo.remote import credentials
from repo.remote.credentials import IN_KEYRING, SecretStore

URL = "https://repo.example"
SECRET = "rp-" + "s" * 49


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class MemoryKeyring(KeyringBackend):
    """A keyring that works: what the Secret Service or the macOS Keychain would be."""

    priority = 1

    def __init__(self):
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.entries.get((service, username))

    def set_password(self, service, username, password):
        self.entries[(service, username)] = password

    def delete_password(self, service, username):
        if self.entries.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("not there")


class BlockingKeyring(KeyringBackend):
    """A keyring that never answers, like a locked Secret Service waiting for an unlock
    dialog nobody sees (twine#338)."""

    priority = 1

    def __init__(self):
        super().__init__()
        self.release = threading.Event()
        self.calls = 0

    def _block(self, *args):
        self.calls += 1
        self.release.wait(30)

    get_password = set_password = delete_password = _block


class BrokenKeyring(KeyringBackend):
    priority = 1

    def _fail(self, *args):
        raise RuntimeError("org.freedesktop.DBus.Error.ServiceUnknown")

    get_password = set_password = delete_password = _fail


@pytest.fixture
def use_keyring():
    """Register a backend for one test; the previous one comes back afterwards."""
    before = keyring.get_keyring()
    yield keyring.set_keyring
    keyring.set_keyring(before)


@pytest.fixture
def desktop(monkeypatch):
    """A desktop session: a session bus, no CI."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("REPO_KEYRING", raising=False)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1000/bus")


def test_file_store_is_0600_in_a_0700_directory(tmp_path):
    store = SecretStore(tmp_path / "conf", mode="file")
    where = store.put(URL, "alice", SECRET)
    assert str(store.path) in where and "plain text" in where
    assert mode(store.path) == 0o600 and mode(store.path.parent) == 0o700
    assert tomllib.loads(store.path.read_text()) == {"servers": {URL: {"alice": SECRET}}}
    assert store.get(URL, "alice") == SECRET
    assert [p.name for p in store.path.parent.iterdir()] == ["credentials.toml"]  # no temp file


def test_file_store_is_private_whatever_the_umask(tmp_path):
    import os

    old = os.umask(0o002)
    try:
        store = SecretStore(tmp_path / "conf", mode="file")
        store.put(URL, "alice", SECRET)
    finally:
        os.umask(old)
    assert mode(store.path) == 0o600 and mode(store.path.parent) == 0o700


def test_delete_forgets_the_secret_and_the_empty_file(tmp_path):
    store = SecretStore(tmp_path, mode="file")
    store.put(URL, "alice", SECRET)
    store.put("http://other", "bob", SECRET)
    store.delete(URL, "alice")
    assert store.get(URL, "alice") is None and store.get("http://other", "bob") == SECRET
    store.delete("http://other", "bob")
    assert not store.path.exists()


def test_a_readable_file_is_tightened_with_a_warning(tmp_path):
    warnings: list[str] = []
    store = SecretStore(tmp_path / "conf", mode="file", warn=warnings.append)
    store.put(URL, "alice", SECRET)
    store.path.chmod(0o644)
    store.path.parent.chmod(0o755)
    assert store.get(URL, "alice") == SECRET
    assert mode(store.path) == 0o600 and mode(store.path.parent) == 0o700
    assert len(warnings) == 2 and "mode 644" in warnings[1] and "made it 600" in warnings[1]


def test_a_directory_made_open_beforehand_is_tightened_on_the_first_write(tmp_path):
    warnings: list[str] = []
    (tmp_path / "conf").mkdir(mode=0o755)
    (tmp_path / "conf").chmod(0o755)
    store = SecretStore(tmp_path / "conf", mode="file", warn=warnings.append)

    store.put(URL, "alice", SECRET)

    assert mode(store.path) == 0o600 and mode(store.path.parent) == 0o700
    assert len(warnings) == 1 and "mode 755" in warnings[0] and "made it 700" in warnings[0]


def test_a_working_keyring_keeps_the_secret_and_no_file(tmp_path, use_keyring, desktop):
    backend = MemoryKeyring()
    use_keyring(backend)
    store = SecretStore(tmp_path)
    assert store.put(URL, "alice", SECRET) == IN_KEYRING
    assert backend.entries == {(f"repo:{URL}", "alice"): SECRET}
    assert not store.path.exists()
    assert store.get(URL, "alice") == SECRET
    store.delete(URL, "alice")
    assert backend.entries == {} and store.get(URL, "alice") is None


def test_a_blocking_keyring_is_abandoned_after_the_timeout(tmp_path, use_keyring, desktop):
    backend = BlockingKeyring()
    use_keyring(backend)
    warnings: list[str] = []
    store = SecretStore(tmp_path, mode="keyring", timeout=0.2, warn=warnings.append)
    try:
        where = store.put(URL, "alice", SECRET)
        assert store.get(URL, "alice") == SECRET  # from the file, without asking again
    finally:
        backend.release.set()
    assert where.startswith(str(store.path))
    assert warnings == [f"cannot use the system keyring (it did not answer in 0.2 s); using"
                        f" {store.path} instead"]  # fmt: skip
    assert backend.calls == 1
    assert mode(store.path) == 0o600


def test_a_failing_keyring_falls_back_to_the_file_with_one_warning(tmp_path, use_keyring,
                                                                   desktop):  # fmt: skip
    use_keyring(BrokenKeyring())
    warnings: list[str] = []
    store = SecretStore(tmp_path, warn=warnings.append)
    store.put(URL, "alice", SECRET)
    store.get(URL, "alice")
    assert len(warnings) == 1 and "ServiceUnknown" in warnings[0]
    assert store.get(URL, "alice") == SECRET


def test_the_null_backend_means_the_file_without_a_warning(tmp_path, use_keyring, desktop):
    use_keyring(null.Keyring())
    warnings: list[str] = []
    store = SecretStore(tmp_path, warn=warnings.append)
    assert store.put(URL, "alice", SECRET).startswith(str(store.path))
    assert warnings == []


@pytest.mark.parametrize(
    "env, store_mode, wanted",
    [
        ({"DBUS_SESSION_BUS_ADDRESS": "unix:path=/bus"}, "auto", True),
        ({"DBUS_SESSION_BUS_ADDRESS": "unix:path=/bus", "CI": "true"}, "auto", False),
        ({}, "auto", False),  # Linux without a session bus: no Secret Service
        ({"CI": "true"}, "keyring", True),
        ({"DBUS_SESSION_BUS_ADDRESS": "unix:path=/bus", "REPO_KEYRING": "0"}, "keyring", False),
        ({"DBUS_SESSION_BUS_ADDRESS": "unix:path=/bus"}, "file", False),
    ],
)
def test_when_the_keyring_is_tried(monkeypatch, env, store_mode, wanted):
    for name in ("CI", "DBUS_SESSION_BUS_ADDRESS", "REPO_KEYRING"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(credentials.sys, "platform", "linux")
    assert credentials.keyring_wanted(store_mode) is wanted
