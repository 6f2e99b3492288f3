"""Single flight: one holder per key at a time, across threads, until release or expiry."""

from __future__ import annotations

import socket
import threading
import time

from repo.db import open_connection
from repo.mirror import lease


def test_one_thread_of_many_takes_a_lease(app):
    won = []

    def attempt():
        db = open_connection(app)
        won.append(lease.take(db, "file:x.whl"))
        db.close()

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert sorted(won) == [False] * 7 + [True]


def test_a_released_lease_can_be_taken_again(repo):
    assert lease.take(repo.db, "k", path="/tmp/x")
    assert lease.held(repo.db, "k")["path"] == "/tmp/x"

    lease.release(repo.db, "k")

    assert lease.held(repo.db, "k") is None
    assert lease.take(repo.db, "k")


def test_an_expired_lease_is_taken_over(repo):
    moment = [1000.0]
    assert lease.take(repo.db, "k", clock=lambda: moment[0])
    assert not lease.take(repo.db, "k", clock=lambda: moment[0] + lease.TERM - 1)

    assert lease.take(repo.db, "k", clock=lambda: moment[0] + lease.TERM + 1)


def test_wait_returns_when_the_holder_releases(app, repo):
    taken, go = threading.Event(), threading.Event()

    def hold():
        db = open_connection(app)
        assert lease.take(db, "k")
        taken.set()
        go.wait(10)
        lease.release(db, "k")
        db.close()

    thread = threading.Thread(target=hold)
    thread.start()
    taken.wait(10)
    assert not lease.wait(repo.db, "k", deadline=time.time() + 0.2)  # still held

    go.set()

    assert lease.wait(repo.db, "k", deadline=time.time() + 10)
    thread.join(10)


def test_only_the_holder_releases(repo):
    assert lease.take(repo.db, "k")
    thread = threading.Thread(target=lease.release, args=(repo.db, "k"))
    thread.start()
    thread.join(10)

    assert lease.held(repo.db, "k") is not None


def test_a_holder_names_its_host_and_only_this_hosts_holders_are_local(repo):
    assert lease.take(repo.db, "k")
    held = lease.held(repo.db, "k")

    assert held["holder"].startswith(f"{socket.gethostname()}:")
    assert lease.on_this_host(held)
    assert not lease.on_this_host({"holder": "elsewhere:1:2"})
