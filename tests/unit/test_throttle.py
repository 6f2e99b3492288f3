"""Failed-authentication throttling: per client address, shared by every worker (counted in
the database), refusing credentials with 429 and Retry-After until the window ends."""

from __future__ import annotations

import pytest

from repo import throttle, tokens
from repo.db import get_db

from ..conftest import RepoHelper, make_app
from .builders import basic, refusal, send, token_auth

LIMIT = 3
PASSWORD = "alice-password"


@pytest.fixture
def strict(tmp_path):
    app = make_app(tmp_path / "data", AUTH_FAILURE_LIMIT=LIMIT)
    with app.app_context():
        made = RepoHelper(get_db()).owner_with_channel("alice", "ch")
        good = token_auth(RepoHelper(get_db()).token(made.user_id))
        RepoHelper(get_db()).owner_with_channel("bob", "open", public=True)
        yield app, good


def fail(client, address="10.0.0.1"):
    return send(client, "GET", "/api/repo/ch/simple/", headers=token_auth(tokens.generate()),
                environ_base={"REMOTE_ADDR": address})  # fmt: skip


def test_too_many_failures_refuse_even_the_right_password_with_429(strict):
    app, _ = strict
    client = app.test_client()
    assert [fail(client).status_code for _ in range(LIMIT)] == [401] * LIMIT

    response = send(client, "GET", "/api/repo/ch/simple/", headers=basic("alice", PASSWORD),
                    environ_base={"REMOTE_ADDR": "10.0.0.1"})  # fmt: skip

    assert response.status_code == 429
    assert refusal(response).startswith("Too many failed authentications from this address")
    assert 0 < int(response.headers["Retry-After"]) <= throttle.WINDOW + 1


def test_past_the_limit_a_wrong_token_gets_429_and_a_good_one_still_works(strict):
    # Guessing a 256-bit token is hopeless, so a good one is not held up (and costs no query).
    app, good = strict
    client = app.test_client()
    for _ in range(LIMIT):
        fail(client)

    wrong = fail(client)
    right = send(client, "GET", "/api/repo/ch/simple/", headers=good,
                 environ_base={"REMOTE_ADDR": "10.0.0.1"})  # fmt: skip

    assert wrong.status_code == 429 and "Retry-After" in wrong.headers
    assert right.status_code == 200


def test_other_addresses_and_anonymous_reads_are_not_throttled(strict):
    app, good = strict
    client = app.test_client()
    for _ in range(LIMIT):
        fail(client)

    other = send(client, "GET", "/api/repo/ch/simple/", headers=good,
                 environ_base={"REMOTE_ADDR": "10.0.0.2"})  # fmt: skip
    anonymous = send(client, "GET", "/api/repo/open/simple/",
                     environ_base={"REMOTE_ADDR": "10.0.0.1"})  # fmt: skip

    assert other.status_code == 200
    assert anonymous.status_code == 200


def test_failures_below_the_limit_do_not_throttle(strict):
    app, good = strict
    client = app.test_client()
    for _ in range(LIMIT - 1):
        fail(client)

    response = send(client, "GET", "/api/repo/ch/simple/", headers=good,
                    environ_base={"REMOTE_ADDR": "10.0.0.1"})  # fmt: skip

    assert response.status_code == 200


def test_the_window_ends(strict, monkeypatch):
    app, good = strict
    client = app.test_client()
    for _ in range(LIMIT):
        fail(client)
    later = throttle.time.time() + throttle.WINDOW + 1
    monkeypatch.setattr(throttle.time, "time", lambda: later)

    response = send(client, "GET", "/api/repo/ch/simple/", headers=good,
                    environ_base={"REMOTE_ADDR": "10.0.0.1"})  # fmt: skip

    assert response.status_code == 200
    assert fail(client).status_code == 401
    count = get_db().execute("SELECT count FROM auth_failures WHERE address = '10.0.0.1'")
    assert count.fetchone()[0] == 1


def test_behind_a_trusted_proxy_the_forwarded_address_counts(tmp_path):
    app = make_app(tmp_path / "data", AUTH_FAILURE_LIMIT=1, TRUSTED_PROXIES=1)
    client = app.test_client()
    headers = {**token_auth(tokens.generate()), "X-Forwarded-For": "203.0.113.7"}

    send(client, "GET", "/api/repo/ch/simple/", headers=headers)
    throttled = send(client, "GET", "/api/repo/ch/simple/", headers=headers)
    elsewhere = send(client, "GET", "/api/repo/ch/simple/",
                     headers={**headers, "X-Forwarded-For": "203.0.113.8"})  # fmt: skip

    assert throttled.status_code == 429
    assert elsewhere.status_code == 401


def test_a_failure_deletes_every_window_that_has_ended(strict, monkeypatch):
    app, _ = strict
    client = app.test_client()
    began = throttle.time.time()
    for address, at in [("10.0.0.1", began), ("10.0.0.2", began + throttle.WINDOW / 2),
                        ("10.0.0.3", began + throttle.WINDOW + 1)]:  # fmt: skip
        monkeypatch.setattr(throttle.time, "time", lambda at=at: at)
        fail(client, address)

    rows = get_db().execute("SELECT address FROM auth_failures ORDER BY address").fetchall()

    assert [row["address"] for row in rows] == ["10.0.0.2", "10.0.0.3"]


# SQLite's query plan: test_postgres.py has PostgreSQL's.
@pytest.mark.embedded_only
def test_deleting_ended_windows_reads_only_them_through_the_index(strict):
    app, _ = strict
    statements: list[str] = []
    db = get_db()
    db.set_trace_callback(statements.append)
    fail(app.test_client())
    db.set_trace_callback(None)

    [prune] = [sql for sql in statements if sql.startswith("DELETE FROM auth_failures")]
    plan = " ".join(row["detail"] for row in db.execute(f"EXPLAIN QUERY PLAN {prune}"))

    assert "USING INDEX auth_failures_window" in plan, plan
