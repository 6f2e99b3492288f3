"""The blob store on a temporary directory: pending files are committed by rename into
ab/cd/<sha256> or removed, identical content is stored once, and a commit is durable: the
file, then the directory of the rename (and of each new directory) are fsynced. A large blob
is hashed in threads: its digests equal hashlib's however it is written, and a hash that fails
discards it."""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import random
import threading
import time

import pytest

from repo.blobs import PARALLEL_FROM, FolderBlobStore

MiB = 1024 * 1024


@pytest.fixture
def store(tmp_path):
    return FolderBlobStore(tmp_path / "blobs")


def committed(store: FolderBlobStore) -> list[str]:
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


def test_a_blob_reads_back_by_its_sha256_and_a_missing_one_is_file_not_found(store):
    sha256 = store.holding(b"read me").commit()
    missing = hashlib.sha256(b"never stored").hexdigest()

    with store.open(sha256) as blob:
        assert blob.read() == b"read me"
    assert store.size(sha256) == 7 and store.local_path(sha256) == store.path(sha256)
    for read in (store.open, store.size, store.local_path):
        with pytest.raises(FileNotFoundError):
            read(missing)


def test_the_listing_names_every_blob_with_its_mtime_and_nothing_else(store):
    sha256 = store.holding(b"listed").commit()
    stray = store.root / "ab" / "cd" / "notes.txt"  # not a blob
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"")

    assert list(store.listing()) == [
        (sha256, store.path(sha256).stat().st_mtime, store.path(sha256))
    ]
    assert store.abort_stale_uploads(time.time()) == []
    assert store.drop_local_copies(set(), time.time()) == []


@pytest.mark.parametrize(
    "name", ["", "a" * 63, "A" * 64, "g" * 64, "../" + "a" * 61, "a" * 65, "a" * 62 + "/x"]
)
def test_path_refuses_anything_but_a_sha256(store, name):
    with pytest.raises(ValueError, match="not a sha256 hex digest"):
        store.path(name)


def test_discarded_blob_cannot_be_committed(tmp_path):
    store = FolderBlobStore(tmp_path)
    pending = store.begin()
    pending.write(b"gone")
    pending.discard()

    with pytest.raises(ValueError, match="discarded"):
        pending.commit()
    assert list(tmp_path.glob("??/??/*")) == []


def test_commit_twice_returns_the_same_digest(tmp_path):
    pending = FolderBlobStore(tmp_path).begin()
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


def hashlib_digests(data: bytes) -> dict[str, str]:
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "blake2_256": hashlib.blake2b(data, digest_size=32).hexdigest(),
        "md5": hashlib.md5(data).hexdigest(),
    }


def hashing_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("blob-hash")]


CHUNK_PATTERNS = {
    "one write": [3 * MiB + 17],
    "the form parser's reads": [MiB] * 5 + [123],
    "just below, at and past the threshold": [PARALLEL_FROM - 1, 1, 1, MiB],
    "small chunks past the threshold": [PARALLEL_FROM, *([4096] * 300), 1, 0, 2047, 2048, 2049],
    "empty writes between": [0, MiB + 1, 0, 0, 5, 0, MiB],
    "odd sizes": [700_001, 1, 999_999, 65_536, 1_500_000, 3],
}


@pytest.mark.parametrize("sizes", CHUNK_PATTERNS.values(), ids=CHUNK_PATTERNS.keys())
def test_digests_hashed_in_threads_equal_hashlibs(store, sizes):
    data = os.urandom(sum(sizes))
    with store.begin() as pending:
        offset = 0
        for size in sizes:
            assert pending.write(data[offset : offset + size]) == size
            offset += size
        digests = pending.digests()
        assert pending.commit() == digests["sha256"]

    assert digests == hashlib_digests(data)
    assert store.path(digests["sha256"]).read_bytes() == data
    assert pending.size == len(data) and hashing_threads() == []


@pytest.mark.parametrize("seed", range(20))
def test_digests_equal_hashlibs_for_random_chunkings(store, seed):
    chunking = random.Random(seed)
    data = os.urandom(chunking.randrange(2 * MiB, 4 * MiB))
    with store.begin() as pending:
        offset = 0
        while offset < len(data):
            size = chunking.choice([0, 1, 100, 2048, 65_536, MiB, chunking.randrange(3 * MiB)])
            pending.write(data[offset : offset + size])
            offset += size
        assert pending.digests() == hashlib_digests(data)
        assert pending.sha256 == hashlib.sha256(data).hexdigest()


def test_a_buffer_reused_by_the_writer_is_hashed_as_it_was_written(store):
    # The threads hash a chunk after write() returned: the caller may refill its buffer.
    buffer, written = bytearray(MiB), []
    with store.begin() as pending:
        for byte in range(6):
            buffer[:] = bytes([byte]) * MiB
            pending.write(memoryview(buffer))
            written.append(bytes(buffer))
        assert pending.digests() == hashlib_digests(b"".join(written))


def test_a_large_blob_is_hashed_off_the_writing_thread(store, monkeypatch):
    hashed_on, md5 = set(), hashlib.md5

    class Recording:
        def __init__(self, **options):
            self._md5 = md5(**options)

        def update(self, data):
            hashed_on.add(threading.get_ident())
            self._md5.update(data)

        def hexdigest(self):
            return self._md5.hexdigest()

    monkeypatch.setattr(hashlib, "md5", Recording)
    data = os.urandom(PARALLEL_FROM + 2 * MiB)
    with store.begin() as pending:
        pending.write(data[:PARALLEL_FROM])
        assert hashed_on == {threading.get_ident()}  # small so far: hashed inline
        pending.write(data[PARALLEL_FROM:])
        assert pending.digests()["md5"] == md5(data).hexdigest()

    assert len(hashed_on) == 2 and hashing_threads() == []


class FailingBlake2:
    """A blake2b whose update raises once it is given more than `fails_after` bytes."""

    blake2b = hashlib.blake2b

    def __init__(self, fails_after: int, **options):
        self.fails_after = fails_after
        self._blake2 = self.blake2b(**options)

    def update(self, data):
        self.fails_after -= len(data)
        if self.fails_after < 0:
            raise MemoryError("hashing failed")
        self._blake2.update(data)

    def hexdigest(self):
        return self._blake2.hexdigest()


@pytest.mark.parametrize("fails_after", [MiB, 3 * MiB, 10 * MiB - 1])
def test_a_hashing_thread_that_fails_discards_the_pending_file(store, monkeypatch, fails_after):
    monkeypatch.setattr(hashlib, "blake2b", functools.partial(FailingBlake2, fails_after))
    pending = store.begin()
    with pytest.raises(MemoryError, match="hashing failed"):
        for _ in range(10):
            pending.write(b"x" * MiB)
        pending.digests()

    assert pending.discarded and os.listdir(store.tmp_dir) == []
    with pytest.raises(ValueError, match="discarded"):
        pending.commit()
    assert committed(store) == [] and hashing_threads() == []


def test_a_failed_write_discards_the_pending_file_and_its_threads(store, monkeypatch):
    pending = store.begin()
    pending.write(b"x" * (2 * MiB))
    assert hashing_threads()

    def full_disk(data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pending._file, "write", full_disk)
    with pytest.raises(OSError, match="No space left"):
        pending.write(b"y" * MiB)

    assert pending.discarded and os.listdir(store.tmp_dir) == []
    assert hashing_threads() == []


def test_discard_halfway_through_a_large_upload_ends_its_threads(store):
    with pytest.raises(ConnectionResetError):
        with store.begin() as pending:
            for _ in range(4):
                pending.write(os.urandom(MiB))
            assert hashing_threads()
            raise ConnectionResetError("client went away")

    assert os.listdir(store.tmp_dir) == [] and hashing_threads() == []


def test_writing_after_the_digests_were_read_hashes_on(store):
    first, second = os.urandom(2 * MiB), os.urandom(2 * MiB)
    with store.begin() as pending:
        pending.write(first)
        assert pending.digests() == hashlib_digests(first)
        pending.write(second)
        assert pending.digests() == hashlib_digests(first + second)
