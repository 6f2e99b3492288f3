"""Many clients at once against two gunicorn workers: Python and R uploads to one channel (the
same file from several clients, and two different files under one name) with R index
rebuilds and readers running beside them. Every read of an index that exists answers 200
with a whole file, and the end state holds exactly the acknowledged uploads, row by row and
blob by blob. Uploads are real curl processes; bounded in count and time, 127.0.0.1 only."""

from __future__ import annotations

import gzip
import json
import lzma
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from . import faults

PROJECTS = 6
R_PACKAGES = 3
READERS = 6
ROUNDS = 200  # the most rounds of reads a reader makes while the uploads run
KINDS = {"wheel": faults.wheel_upload, "r": faults.r_upload}


@pytest.fixture(scope="module")
def racing(tmp_path_factory):
    """A server whose requests can be held at a point until others get there (faults)."""
    hooks, server, work = faults.hooked(tmp_path_factory.mktemp("racing"))
    yield server, hooks, work
    server.stop()


def channel(server, name: str) -> tuple[str, str, str]:
    """A new channel of alice's: its upload URL, its read base URL and a write token."""
    server.cli("channel", "create", name, "--owner", "alice")
    token = server.cli("token", "create", "alice", "--channel", name, "--scope", "write")
    return f"{server.url}/api/repo/{name}", f"{server.url}/api/repo/t/{token}/{name}", token


def stored(server, name: str) -> set[tuple[str, str]]:
    """(filename, sha256) of every row of channel `name`."""
    rows = server.query("SELECT filename, sha256 FROM files JOIN channels"
                        " ON channels.id = channel_id WHERE channels.name = ?", name)  # fmt: skip
    return set(rows)


@pytest.mark.parametrize("kind", KINDS)
def test_two_files_under_one_name_racing_give_one_409_and_leave_no_blob(racing, kind):
    server, hooks, work = racing
    url, base, token = channel(server, f"race-{kind}")
    first, second = (KINDS[kind](f"race{kind}", variant=v) for v in (b"# 1\n", b"# 2\n"))
    # Both requests wait at publish() until the other is there too: both have passed the
    # check for an existing file, and their INSERTs race.
    hooks.arm("publish", "meet", count=2)
    try:
        clients = [faults.send(url, token, u, work) for u in (first, second)]
        answers = [faults.answer(client) for client in clients]
        assert hooks.reached()["point"] == "publish"
    finally:
        hooks.disarm()

    assert sorted(status for status, _ in answers) == [200, 409], answers
    winner, loser = (first, second) if answers[0][0] == 200 else (second, first)
    assert "File already exists" in dict(answers)[409]
    assert stored(server, f"race-{kind}") == {(winner.filename, winner.sha256)}
    assert faults.listed(base, winner) and faults.downloaded(base, winner) == winner.data
    assert loser.sha256 not in server.blobs()
    assert server.blobs() == faults.referenced(server) and server.pending() == []


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.replace("-", ".").split("."))


def versions(packages: bytes) -> dict[str, str]:
    return {name: fields["Version"] for name, fields in faults.whole_index(packages).items()}


def read_round(base: str) -> dict[str, dict]:
    """One read of every index of the channel, each checked whole; what each one lists."""
    status, body = faults.get(f"{base}/simple/", faults.JSON)
    assert status == 200, (status, body)
    seen = {"simple": {p["name"]: "" for p in json.loads(body)["projects"]}}
    for i in range(PROJECTS):
        seen[f"pkg{i}"] = faults.python_files(base, f"pkg{i}")
    contrib = f"{base}/cran/src/contrib"
    status, packages = faults.get(f"{contrib}/PACKAGES")
    assert status == 200, (status, packages)
    seen["PACKAGES"] = versions(packages)
    status, packed = faults.get(f"{contrib}/PACKAGES.gz")
    assert status == 200, (status, packed)
    seen["PACKAGES.gz"] = versions(gzip.decompress(packed))
    status, rds = faults.get(f"{contrib}/PACKAGES.rds")
    assert status == 200, (status, rds)
    unpacked = gzip.decompress(rds) if rds[:2] == b"\x1f\x8b" else lzma.decompress(rds)
    assert unpacked.startswith(b"X\n"), "a torn PACKAGES.rds"
    return seen


def reader(base: str, done: threading.Event) -> int:
    """Read every index until the uploads are done; no index ever loses an entry or goes
    back to a lower version (no read sees an older revision than one before it). Return the
    rounds made."""
    before = read_round(base)
    for rounds in range(1, ROUNDS + 1):
        if done.is_set():
            return rounds
        now = read_round(base)
        for index, entries in before.items():
            for name, version in entries.items():
                assert name in now[index], (index, name, now[index])
                if index.startswith("PACKAGES"):
                    assert version_key(now[index][name]) >= version_key(version), index
        before = now
    return ROUNDS


def test_python_and_r_uploads_index_builds_and_reads_at_once(racing):
    server, _, work = racing
    url, base, token = channel(server, "busy")

    def upload(u: faults.Upload) -> int:
        return faults.answer(faults.send(url, token, u, work))[0]

    # One file of each project and package first: every index read below is of one that exists.
    first = [faults.wheel_upload(f"pkg{i}", "0.1") for i in range(PROJECTS)]
    first += [faults.r_upload(f"rpkg{i}", "0.1") for i in range(R_PACKAGES)]
    assert [upload(u) for u in first] == [200] * len(first)
    distinct = [faults.wheel_upload(f"pkg{i % PROJECTS}", f"1.{i}") for i in range(24)]
    distinct += [faults.r_upload(f"rpkg{i % R_PACKAGES}", f"1.{i}") for i in range(18)]
    same = [faults.wheel_upload("shared")] * 4 + [faults.r_upload("rshared")] * 3
    pairs = [(make(f"{kind}pair{i}", variant=b"# a\n"), make(f"{kind}pair{i}", variant=b"# b\n"))
             for kind, make in KINDS.items() for i in range(2)]  # fmt: skip
    done = threading.Event()
    with ThreadPoolExecutor(max_workers=16) as pool:
        readers = [pool.submit(reader, base, done) for _ in range(READERS)]
        accepted = [pool.submit(upload, u) for u in [*distinct, *same]]
        contested = [(pool.submit(upload, a), pool.submit(upload, b)) for a, b in pairs]
        accepted_statuses = [f.result() for f in accepted]
        contested_statuses = [(a.result(), b.result()) for a, b in contested]
        done.set()
        assert all(f.result() >= 1 for f in readers)

    assert accepted_statuses == [200] * len(accepted)
    assert all(sorted(pair) == [200, 409] for pair in contested_statuses), contested_statuses
    winners = [pair[statuses.index(200)]
               for pair, statuses in zip(pairs, contested_statuses, strict=True)]  # fmt: skip
    acknowledged = [*first, *distinct, *same, *winners]
    assert stored(server, "busy") == {(u.filename, u.sha256) for u in acknowledged}
    assert all(faults.listed(base, u) for u in acknowledged if u.is_wheel)
    latest: dict[str, str] = {}
    for u in acknowledged:
        if not u.is_wheel:
            name, _, version = u.filename.removesuffix(".tar.gz").partition("_")
            latest[name] = max(latest.get(name, version), version, key=version_key)
    assert {name: f["Version"] for name, f in faults.r_packages(base).items()} == latest
    assert server.blobs() == faults.referenced(server) and server.pending() == []
    assert "0 missing, 0 corrupt" in server.cli("fsck")
    log = server.log()
    assert "database is locked" not in log and "Traceback" not in log and '" 500 ' not in log
