"""An active mirror's scheduled sync (mirror.md R0) against FakePyPI on 127.0.0.1: what
`create` takes, a due sync caching its allow-list, the next one a period later (sooner after a
problem), one worker's lease keeping the others out, and the scheduler thread doing it alone."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from repo.errors import Invalid
from repo.mirror import lease, settings, sync

from ..conftest import UNTHROTTLED, make_app
from ..e2e.upstreams import FakePyPI
from .test_mirror_pypi import dist
from .test_mirror_upstream import Clock

DAY = 86400


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(tmp_path, clock):
    app = make_app(tmp_path / "data", CLOCK=clock, **UNTHROTTLED)
    with app.app_context():
        yield app
    if "upstream_client" in app.extensions:
        app.extensions["upstream_client"][1].close()


@pytest.fixture
def fake():
    upstream = FakePyPI()
    yield upstream
    threading.Thread(target=upstream.stop, daemon=True).start()


@pytest.fixture
def channel_id(repo) -> int:
    return repo.owner_with_channel("alice", "ch", public=True).channel_id


def active(repo, channel_id: int, fake: FakePyPI, *sync_list: str, **options):
    return settings.create(repo.db, channel_id, "pypi", fake.index_url, mode="active",
                           sync=sync_list, **options)  # fmt: skip


def cached(repo) -> list[str]:
    rows = repo.db.execute(
        "SELECT filename FROM mirror_files WHERE blob_sha256 IS NOT NULL ORDER BY filename"
    )
    return [row["filename"] for row in rows]


def state(repo, mirror_id: int):
    return repo.db.execute(
        "SELECT next_sync, last_sync, sync_result FROM mirrors WHERE id = ?", (mirror_id,)
    ).fetchone()


def test_an_active_mirror_needs_a_list_and_a_passive_one_takes_none(repo, channel_id, fake):
    with pytest.raises(Invalid, match="needs what to sync"):
        settings.create(repo.db, channel_id, "pypi", fake.index_url, mode="active")
    with pytest.raises(Invalid, match="for an active mirror"):
        settings.create(repo.db, channel_id, "pypi", fake.index_url, sync=("abc",))
    with pytest.raises(Invalid, match="Invalid requirement 'abc>>1'"):
        active(repo, channel_id, fake, "abc>>1")
    with pytest.raises(Invalid, match="Invalid R package name '2abc'"):
        settings.create(repo.db, channel_id, "cran", "https://cran.example/", mode="active",
                        sync=("2abc",))  # fmt: skip


def test_the_list_and_period_are_kept_and_shown(repo, channel_id, fake):
    made = active(repo, channel_id, fake, "Alpha >=1.0", "beta", every=timedelta(hours=6))
    assert made.public()["sync"] == ["Alpha>=1.0", "beta"]
    assert made.public()["sync_every"] == 6 * 3600
    default = settings.create(repo.db, channel_id, "cran", "https://cran.example/",
                              mode="active", sync=("abc",))  # fmt: skip
    assert default.sync_every == DAY


def test_a_due_sync_caches_its_list_and_comes_due_again_a_period_later(
    app, repo, channel_id, fake, clock, tmp_path
):
    for version in ("1.0", "2.0"):
        fake.add(dist(tmp_path, "alpha", version))
    fake.add(dist(tmp_path, "beta", "1.0"))
    mirror = active(repo, channel_id, fake, "alpha<2", every=timedelta(hours=6))
    assert sync.due(repo.db, clock()) == [mirror.id]

    result = sync.run(app, mirror.id, lambda _line: None)

    assert result == sync.Result("2 files cached, 0 problems", failed=False)
    assert cached(repo) == ["alpha-1.0-py3-none-any.whl"]
    row = state(repo, mirror.id)
    assert row["next_sync"] == clock() + 6 * 3600
    assert row["sync_result"] == "2 files cached, 0 problems" and row["last_sync"]
    assert sync.due(repo.db, clock()) == []
    clock.now += 6 * 3600
    assert sync.due(repo.db, clock()) == [mirror.id]


def test_a_sync_with_problems_is_tried_again_sooner(app, repo, channel_id, fake, clock):
    mirror = active(repo, channel_id, fake, "missing-project", every=timedelta(hours=6))

    result = sync.run(app, mirror.id, lambda _line: None)

    assert result.failed and result.text == "0 files cached, 1 problems"
    assert state(repo, mirror.id)["next_sync"] == clock() + sync.RETRY


def test_a_sync_that_breaks_unexpectedly_waits_to_be_tried_again(app, repo, channel_id, fake,
                                                                 clock, monkeypatch):  # fmt: skip
    mirror = active(repo, channel_id, fake, "alpha", every=timedelta(hours=6))

    def broken(*_args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(sync.prefetch, "python", broken)
    with pytest.raises(RuntimeError):
        sync.run(app, mirror.id, lambda _line: None)

    assert state(repo, mirror.id)["next_sync"] == clock() + sync.RETRY
    assert state(repo, mirror.id)["sync_result"].startswith("failed: an unexpected error")
    assert sync.due(repo.db, clock()) == []
    assert repo.db.execute("SELECT count(*) FROM mirror_leases").fetchone()[0] == 0


def test_a_sync_another_worker_holds_is_skipped(app, repo, channel_id, fake, clock):
    mirror = active(repo, channel_id, fake, "alpha")
    # Another process's holder: this thread's lease.take() must find it held.
    repo.db.execute("INSERT INTO mirror_leases VALUES (?, 'other:1', ?, NULL)",
                    (f"sync:{mirror.id}", time.time() + lease.TERM))  # fmt: skip

    assert sync.run(app, mirror.id, lambda _line: None) is None
    assert state(repo, mirror.id)["last_sync"] is None
    assert fake.log.count("*") == 0


def test_the_scheduler_thread_runs_a_due_sync_without_any_request(
    app, repo, channel_id, fake, tmp_path, monkeypatch
):
    fake.add(dist(tmp_path, "alpha", "1.0"))
    mirror = active(repo, channel_id, fake, "alpha")
    monkeypatch.setattr(sync, "TICK", 0.05)
    scheduler = sync.Scheduler(app)
    scheduler.start()
    try:
        deadline = time.monotonic() + 20
        while state(repo, mirror.id)["last_sync"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.stop()

    assert state(repo, mirror.id)["sync_result"].endswith("files cached, 0 problems")
    assert "alpha-1.0-py3-none-any.whl" in cached(repo)
    assert not scheduler.thread.is_alive()
