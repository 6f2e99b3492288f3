"""The blob store on a temporary directory: pending files are committed by rename into
ab/cd/<sha256> or removed, identical content is stored once, and a commit is durable: the
file, then the directory of the rename (and of each new directory) are fsynced."""

from __future__ import annotations

import hashlib
import os

import pytest

from repo.blobs import BlobStore


@pytest.fixture
def store(tmp_path):
    return BlobStore(tmp_path / "blobs")


def committed(store: BlobStore) -> list[str]:
    return sorted(str(path.relative_to(store.root)) for path in store.root.glob("??/??/*"))


def test_commit_renames_the_pending_file_into_its_sha256_path(store):
    data = b"some bytes\x00\xff"
    sha256 = hashlib.sha256(data).hexdigest()
    pending = store.begin()
    pending.write(data[:4])
    pending.write(data[4:])
    temp_path, inode = pending.path, os.stat(pending.path).st_ino

    assert pending.commit() == sha256

    target = store.root / sha256[:2] / sha256[2:4] / sha256
    assert committed(store) == [f"{sha256[:2]}/{sha256[2:4]}/{sha256}"]
    assert target.read_bytes() == data and os.stat(target).st_ino == inode
    assert not os.path.exists(temp_path) and os.listdir(store.tmp_dir) == []
    assert store.exists(sha256) and store.path(sha256) == target
    assert pending.size == len(data)


def test_pending_blob_gives_every_digest_twine_sends(store):
    data = b"x" * 100_000
    pending = store.begin()
    pending.write(data)
    assert pending.digests() == {
        "sha256": hashlib.sha256(data).hexdigest(),
        "blake2_256": hashlib.blake2b(data, digest_size=32).hexdigest(),
        "md5": hashlib.md5(data).hexdigest(),
    }
    pending.discard()


def test_discard_removes_the_temp_file_and_is_harmless_twice(store):
    pending = store.begin()
    pending.write(b"abc")
    assert os.listdir(store.tmp_dir) == [os.path.basename(pending.path)]

    pending.discard()
    pending.discard()

    assert os.listdir(store.tmp_dir) == [] and committed(store) == []


def test_discard_after_commit_keeps_the_blob(store):
    pending = store.begin()
    pending.write(b"abc")
    sha256 = pending.commit()

    pending.discard()

    assert store.exists(sha256)


def test_identical_content_is_stored_once(store):
    shas = []
    for _ in range(3):
        with store.begin() as pending:
            pending.write(b"same content")
            shas.append(pending.commit())

    assert len(set(shas)) == 1
    assert committed(store) == [f"{shas[0][:2]}/{shas[0][2:4]}/{shas[0]}"]
    with store.holding(b"same content") as pending:
        assert pending.commit() == shas[0]
    assert len(committed(store)) == 1 and os.listdir(store.tmp_dir) == []


def test_exception_inside_with_discards_the_pending_file(store):
    with pytest.raises(RuntimeError, match="client went away"):
        with store.begin() as pending:
            pending.write(b"half a file")
            raise RuntimeError("client went away")

    assert os.listdir(store.tmp_dir) == [] and committed(store) == []


def test_leaving_with_without_commit_discards_the_pending_file(store):
    with store.begin() as pending:
        pending.write(b"never committed")

    assert os.listdir(store.tmp_dir) == [] and committed(store) == []


def test_close_discards_what_was_not_committed(store):
    # werkzeug closes every uploaded file part when the request ends.
    pending = store.begin()
    pending.write(b"abc")
    pending.close()
    assert os.listdir(store.tmp_dir) == []


def test_delete_removes_a_blob_and_is_harmless_when_missing(store):
    sha256 = store.holding(b"abc").commit()
    store.delete(sha256)
    store.delete(sha256)
    assert not store.exists(sha256) and committed(store) == []


@pytest.mark.parametrize(
    "name", ["", "a" * 63, "A" * 64, "g" * 64, "../" + "a" * 61, "a" * 65, "a" * 62 + "/x"]
)
def test_path_refuses_anything_but_a_sha256(store, name):
    with pytest.raises(ValueError, match="not a sha256 hex digest"):
        store.path(name)


def test_discarded_blob_cannot_be_committed(tmp_path):
    store = BlobStore(tmp_path)
    pending = store.begin()
    pending.write(b"gone")
    pending.discard()

    with pytest.raises(ValueError, match="discarded"):
        pending.commit()
    assert list(tmp_path.glob("??/??/*")) == []


def test_commit_twice_returns_the_same_digest(tmp_path):
    pending = BlobStore(tmp_path).begin()
    pending.write(b"twice")

    assert pending.commit() == pending.commit() == hashlib.sha256(b"twice").hexdigest()


@pytest.fixture
def synced(monkeypatch) -> list[tuple[str, str]]:
    """("fsync", path) and ("replace", target) as they happen, in order."""
    calls = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(fd: int) -> None:
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def recording_replace(source, target) -> None:
        replace(source, target)
        calls.append(("replace", str(target)))

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    return calls


def test_commit_fsyncs_the_file_then_the_directories_it_changed(store, synced):
    pending = store.holding(b"first")
    temp_path = pending.path
    sha256 = pending.commit()

    target = store.path(sha256)
    assert synced == [
        ("fsync", temp_path),  # the content, before it gets its name
        ("fsync", str(store.root)),  # ab/ is new
        ("fsync", str(target.parent.parent)),  # ab/cd/ is new
        ("replace", str(target)),
        ("fsync", str(target.parent)),  # the rename
    ]


def test_commit_into_existing_directories_fsyncs_only_the_rename(store, synced):
    pending = store.holding(b"second")
    target = store.path(pending.sha256)
    target.parent.mkdir(parents=True)  # as an earlier blob with the same prefix left it

    pending.commit()

    assert synced == [("fsync", pending.path), ("replace", str(target)),
                      ("fsync", str(target.parent))]  # fmt: skip


def test_sync_puts_the_content_on_disk_once_before_commit(store, synced):
    pending = store.holding(b"large file")
    pending.sync()
    pending.sync()
    assert synced == [("fsync", pending.path)]

    pending.commit()

    assert synced.count(("fsync", pending.path)) == 1


def test_withdraw_removes_the_committed_blob_and_leaves_no_temp_file(store):
    with store.holding(b"recorded nowhere") as pending:
        sha256 = pending.commit()
        pending.withdraw()

    assert not store.exists(sha256) and committed(store) == []
    assert os.listdir(store.tmp_dir) == []
    with pytest.raises(ValueError, match="discarded"):
        pending.commit()
