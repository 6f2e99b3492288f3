"""Basic `user:password` checks remembered briefly: a repeated password costs no hash check,
but a new password or a disabled user counts on the very next request, from any process; the
cache is bounded, its entries expire, and it never keeps a password or a failure."""

from __future__ import annotations

import math

import pytest
from werkzeug.security import check_password_hash, generate_password_hash

from repo import accounts, password_cache
from repo.db import get_db, open_connection
from repo.password_cache import PasswordCache

from .builders import basic, refusal, send

pytestmark = pytest.mark.usefixtures("fast_passwords")

PAGE = "/api/repo/ch/simple/"
ALICE = basic("alice", "alice-password")


@pytest.fixture
def hash_checks(monkeypatch) -> list[str]:
    """The hashes werkzeug's check_password_hash is asked about, in order."""
    asked: list[str] = []

    def counting(password_hash: str, password: str) -> bool:
        asked.append(password_hash)
        return check_password_hash(password_hash, password)

    monkeypatch.setattr(password_cache, "check_password_hash", counting)
    return asked


@pytest.fixture
def alice(repo) -> int:
    return repo.owner_with_channel("alice", "ch").user_id


def cheap(password: str) -> str:
    return generate_password_hash(password, method="pbkdf2:sha256:1")


def test_a_second_request_with_the_same_password_costs_no_hash_check(client, alice, hash_checks):
    assert [send(client, "GET", PAGE, headers=ALICE).status_code for _ in range(3)] == [200] * 3
    assert len(hash_checks) == 1


@pytest.mark.parametrize(
    ("change", "new_password_works"),
    [(lambda db, user_id: accounts.set_password(db, user_id, "a-new-password"), True),
     (lambda db, user_id: accounts.set_disabled(db, user_id, True), False)],
    ids=["new-password", "disabled"],
)  # fmt: skip
def test_a_change_made_by_another_process_counts_on_the_next_request(
    app, client, alice, hash_checks, change, new_password_works
):
    assert send(client, "GET", PAGE, headers=ALICE).status_code == 200
    other_worker = open_connection(app)
    change(other_worker, alice)
    other_worker.close()

    refused = send(client, "GET", PAGE, headers=ALICE)
    new = send(client, "GET", PAGE, headers=basic("alice", "a-new-password"))

    assert refused.status_code == 401 and refusal(refused) == "Invalid user name or password"
    assert (new.status_code == 200) is new_password_works


def test_a_wrong_password_or_unknown_name_is_checked_every_time(app, alice, hash_checks):
    # Remembering the check for an unknown name would make it faster than for a known one.
    for name, password in [("alice", "wrong-password"), ("nobody", "alice-password")] * 2:
        assert accounts.check_password(get_db(), name, password) is None
    assert len(hash_checks) == 4


def test_an_entry_expires_a_fixed_time_after_its_check(hash_checks):
    cache, stored = PasswordCache(ttl=300), cheap("secret-password")
    for now in (0, 200, 299.9, 300, 599.9, 600):
        assert cache.check("alice", "secret-password", stored, now=now)
    # Checked at 0, 300 and 600: using an entry does not extend it.
    assert len(hash_checks) == 3


def test_the_cache_holds_at_most_its_size_and_drops_the_least_recently_used(hash_checks):
    cache, stored = PasswordCache(ttl=math.inf), cheap("secret-password")
    for number in range(cache.size + 100):
        assert cache.check(f"user{number}", "secret-password", stored)
        cache.check("user0", "secret-password", stored)
        assert len(cache) <= cache.size
    asked = len(hash_checks)
    assert cache.check("user0", "secret-password", stored)
    assert not cache.check("user1", "wrong-password", stored)
    assert cache.check("user1", "secret-password", stored)
    assert len(hash_checks) == asked + 2
    assert len(cache) == cache.size


def test_the_cache_keeps_neither_names_nor_passwords(hash_checks):
    cache = PasswordCache()
    assert cache.check("alice-the-user", "a-long-secret-password", cheap("a-long-secret-password"))
    assert not cache.check("alice-the-user", "another-password", cheap("a-long-secret-password"))
    held = repr(vars(cache))
    assert "alice-the-user" not in held and "password" not in held
    assert len(cache) == 1
