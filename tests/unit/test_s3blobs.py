"""The S3 blob store against a real S3 protocol server (moto's, tests/stacks/s3.py) with real
boto3, on either stack: the folder's keys, staging before the write lock and a last look under
it, atomic visibility, idempotent re-uploads, nothing left behind by a lost race, gc (the race
of scale-out.md §3.4 and unfinished multipart uploads), redirected and proxied downloads, fsck,
backup and restore."""

from __future__ import annotations

import hashlib
import os
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest

from repo import files, maintenance, s3blobs
from repo.blobs import IMMUTABLE
from repo.db import get_db, transaction
from repo.errors import Conflict
from repo.s3blobs import S3BlobStore

from .. import conftest
from ..conftest import UNTHROTTLED, RepoHelper, make_app
from .builders import META, WHEEL_NAME, send, stored, token_auth, twine_form, wheel

MiB = 1024 * 1024


@pytest.fixture
def s3():
    """A boto3 client of the test server of its own, to look at buckets as they are."""
    return conftest.STACK.s3.client()


@pytest.fixture
def bucket_url() -> str:
    return conftest.STACK.s3.fresh_bucket("s3blobs")


@pytest.fixture
def store(tmp_path, bucket_url) -> S3BlobStore:
    return S3BlobStore(bucket_url, tmp_path / "blobcache")


def s3_app(data_dir: Path, bucket_url: str, **settings):
    """An app on the run's stack but with blobs in `bucket_url`."""
    return make_app(data_dir, BLOB_URL=bucket_url, **UNTHROTTLED, **settings)


@pytest.fixture
def app(tmp_path, bucket_url):
    app = s3_app(tmp_path / "data", bucket_url)
    with app.app_context():
        yield app


@pytest.fixture
def shop(app) -> SimpleNamespace:
    """alice's channel 'ch', and the header of a write token for it."""
    helper = RepoHelper(get_db())
    made = helper.owner_with_channel("alice", "ch")
    auth = token_auth(helper.token(made.user_id, made.channel_id, "write"))
    return SimpleNamespace(user_id=made.user_id, channel_id=made.channel_id, auth=auth)


def keys(s3, store: S3BlobStore) -> list[str]:
    listed = s3.list_objects_v2(Bucket=store.bucket).get("Contents", [])
    return sorted(item["Key"] for item in listed)


def body(s3, store: S3BlobStore, sha256: str) -> bytes:
    return s3.get_object(Bucket=store.bucket, Key=store.key(sha256))["Body"].read()


@pytest.fixture
def sent(s3):
    """The name and request (headers, body...) of each call the store's client sends, in order
    (a hook of boto3's own event system: the requests still go to the server)."""
    calls = []

    def record(model, params, **_):
        calls.append((model.name, params))

    events = s3blobs.client().meta.events
    events.register("before-call.s3", record)
    yield calls
    events.unregister("before-call.s3", record)


def names(calls) -> list[str]:
    return [name for name, _ in calls]


def test_a_commit_uploads_to_the_folders_key_and_its_temp_file_becomes_the_local_copy(store, s3):
    data = b"wheel bytes\x00\xff"
    pending = store.begin()
    pending.write(data)
    inode = os.stat(pending.path).st_ino

    sha256 = pending.commit()

    assert sha256 == hashlib.sha256(data).hexdigest()
    assert keys(s3, store) == [f"blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"]
    assert body(s3, store, sha256) == data
    local = store.local_path(sha256)
    assert local == store.cache.root / sha256[:2] / sha256[2:4] / sha256
    assert os.stat(local).st_ino == inode and os.listdir(store.tmp_dir) == []
    assert store.exists(sha256) and store.size(sha256) == len(data)


@pytest.mark.parametrize(
    ("url", "key"),
    [("s3://b/blobs", "blobs/ab/cd/"), ("s3://b/a/b/", "a/b/ab/cd/"), ("s3://b", "ab/cd/")],
)
def test_keys_are_the_folders_layout_under_the_prefix(tmp_path, url, key):
    sha256 = "abcd" + "0" * 60
    assert S3BlobStore(url, tmp_path).key(sha256) == key + sha256


@pytest.mark.parametrize("url", ["http://bucket/x", "s3:///prefix", "bucket/prefix"])
def test_a_blob_url_that_is_not_s3_is_refused(tmp_path, url):
    with pytest.raises(ValueError, match="s3://BUCKET/PREFIX"):
        S3BlobStore(url, tmp_path)


def test_sync_stages_the_object_before_the_lock_and_withdraw_removes_it(store, s3):
    pending = store.holding(b"staged before the write lock")
    pending.sync()

    assert pending.stored and not pending.committed
    assert keys(s3, store) == [store.key(pending.sha256)]

    pending.withdraw()

    assert keys(s3, store) == [] and os.listdir(store.tmp_dir) == []
    with pytest.raises(ValueError, match="discarded"):
        pending.commit()


def test_uploads_carry_a_sha256_checksum_unless_checksums_are_only_when_required(store, sent):
    # AWS_REQUEST_CHECKSUM_CALCULATION=when_required: for stores that refuse checksums.
    store.holding(b"checked by the store").commit()

    (put,) = [request for name, request in sent if name == "PutObject"]
    checksums = sorted(name for name in put["headers"] if name.startswith("x-amz-checksum-"))
    calculation = s3blobs.client().meta.config.request_checksum_calculation
    assert checksums == (["x-amz-checksum-sha256"] if calculation == "when_supported" else [])


def test_a_large_blob_goes_up_in_parts_and_is_invisible_until_the_last(store, s3, sent):
    data = os.urandom(17 * MiB)
    seen = []

    def look(**_):  # just before CompleteMultipartUpload is sent: every part is there
        try:
            seen.append(s3.head_object(Bucket=store.bucket, Key=store.key(sha256)))
        except s3.exceptions.ClientError as error:
            seen.append(error.response["Error"]["Code"])

    events = s3blobs.client().meta.events
    events.register("before-call.s3.CompleteMultipartUpload", look)
    try:
        with store.begin() as pending:
            pending.write(data)
            sha256 = pending.sha256
            pending.commit()
    finally:
        events.unregister("before-call.s3.CompleteMultipartUpload", look)

    assert seen == ["404"]
    assert names(sent).count("UploadPart") == 3 and "PutObject" not in names(sent)
    assert hashlib.sha256(body(s3, store, sha256)).hexdigest() == sha256
    assert s3.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []


def test_an_identical_reupload_skips_its_upload(store, s3, sent):
    sha256 = store.holding(b"the same bytes").commit()
    sent.clear()

    again = store.holding(b"the same bytes")
    again.sync()
    assert again.commit() == sha256

    assert names(sent) == ["HeadObject", "HeadObject"]  # before the lock, and under it
    assert keys(s3, store) == [store.key(sha256)]


def new_file(pending, filename: str = "demo-1.0.tar.gz") -> files.NewFile:
    return files.NewFile(kind="pypi", name="demo", display_name="demo", version="1.0",
                         filename=filename, sha256=pending.sha256,
                         size=pending.size)  # fmt: skip


def test_gc_while_an_identical_reupload_skipped_its_upload_cannot_lose_the_blob(
    app, shop, s3, sent
):
    # scale-out.md §3.4: an upload's blob that no row names (its publish failed), old enough
    # for gc; the same bytes uploaded again see it and skip their PUT; then gc runs.
    store, db = app.extensions["blobs"], get_db()
    sha256 = store.holding(b"an sdist").commit()
    sent.clear()
    again = store.holding(b"an sdist")
    again.sync()
    assert "PutObject" not in names(sent)
    # The object is past the grace period (0 here), the upload's temp file is not.
    young = time.time() + 3600
    os.utime(again.path, (young, young))

    removed = maintenance.gc(db, store, Path(app.config["DATA_DIR"]), grace=0)
    assert f"s3://{store.bucket}/{store.key(sha256)}" in removed
    assert not store.exists(sha256)

    assert files.publish(db, shop.channel_id, new_file(again), shop.user_id, [again])

    assert body(s3, store, sha256) == b"an sdist"
    assert maintenance.fsck(db, store).ok


def test_a_publish_that_loses_the_race_for_its_name_leaves_no_object(app, shop, s3):
    store, db = app.extensions["blobs"], get_db()
    with store.holding(b"first") as first:
        assert files.publish(db, shop.channel_id, new_file(first), shop.user_id, [first])
    with store.holding(b"other bytes, the same name") as second:
        # As a rival that got past the upload's own check: it loses at the INSERT.
        with pytest.raises(Conflict, match="File already exists"):
            files.publish(db, shop.channel_id, new_file(second), shop.user_id, [second])
        assert not store.exists(second.sha256)

    assert keys(s3, store) == [store.key(first.sha256)]
    assert stored(app)["tmp"] == []


def test_an_identical_publish_that_lost_the_race_keeps_the_winners_object(app, shop, s3):
    store, db = app.extensions["blobs"], get_db()
    with store.holding(b"same") as winner:
        assert files.publish(db, shop.channel_id, new_file(winner), shop.user_id, [winner])
    with store.holding(b"same") as loser:
        assert not files.publish(db, shop.channel_id, new_file(loser), shop.user_id, [loser])

    assert keys(s3, store) == [store.key(winner.sha256)]
    assert maintenance.fsck(db, store).ok


def test_an_upload_through_the_app_is_stored_once_under_its_key(app, shop, client, s3):
    response = send(client, "POST", "/api/repo/ch/", headers=shop.auth, data=twine_form())
    assert response.status_code == 200
    again = send(client, "POST", "/api/repo/ch/", headers=shop.auth, data=twine_form())
    assert again.status_code == 200

    store = app.extensions["blobs"]
    wheel_sha, meta_sha = hashlib.sha256(wheel()).hexdigest(), hashlib.sha256(META).hexdigest()
    assert keys(s3, store) == sorted([store.key(wheel_sha), store.key(meta_sha)])
    assert stored(app) == {"files": 1, "packages": 1, "blobs": sorted([wheel_sha, meta_sha]),
                           "tmp": []}  # fmt: skip


def test_gc_aborts_the_unfinished_uploads_a_dead_server_left(app, s3):
    store = app.extensions["blobs"]
    data_dir = Path(app.config["DATA_DIR"])
    key = store.key(hashlib.sha256(b"never finished").hexdigest())
    upload = s3.create_multipart_upload(Bucket=store.bucket, Key=key)
    s3.upload_part(Bucket=store.bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1,
                   Body=b"the first part")  # fmt: skip
    where = f"s3://{store.bucket}/{key} (unfinished upload)"

    assert keys(s3, store) == []  # invisible
    assert maintenance.gc(get_db(), store, data_dir) == []  # young: it may be under way
    assert maintenance.gc(get_db(), store, data_dir, grace=0, dry_run=True) == [where]
    assert len(s3.list_multipart_uploads(Bucket=store.bucket)["Uploads"]) == 1
    assert maintenance.gc(get_db(), store, data_dir, grace=0) == [where]
    assert s3.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []


def test_gc_removes_unreferenced_objects_and_local_copies_and_spares_the_rest(
    app, shop, client, s3
):
    store, db = app.extensions["blobs"], get_db()
    data_dir = Path(app.config["DATA_DIR"])
    assert send(client, "POST", "/api/repo/ch/", headers=shop.auth,
                data=twine_form()).status_code == 200  # fmt: skip
    orphan = store.holding(b"recorded nowhere").commit()
    # A local copy whose object another host's gc removed.
    gone = store.holding(b"removed elsewhere").commit()
    s3.delete_object(Bucket=store.bucket, Key=store.key(gone))
    s3.put_object(Bucket=store.bucket, Key="blobs/notes.txt", Body=b"not a blob")

    assert maintenance.gc(db, store, data_dir) == []  # all young
    listed = maintenance.gc(db, store, data_dir, grace=0, dry_run=True)
    removed = maintenance.gc(db, store, data_dir, grace=0)

    object_url = f"s3://{store.bucket}/{store.key(orphan)}"
    expected = sorted([store.cache.path(gone), store.cache.path(orphan), object_url], key=str)
    assert listed == removed == expected
    assert sorted(blob.sha256 for blob in store.listing()) == stored(app)["blobs"]
    assert len(stored(app)["blobs"]) == 2 and "blobs/notes.txt" in keys(s3, store)
    assert maintenance.fsck(db, store).ok


def download_url(filename: str = WHEEL_NAME) -> str:
    """The URL of the wheel twine_form() uploads (or of `filename`, its metadata)."""
    return f"/api/repo/ch/files/{hashlib.sha256(wheel()).hexdigest()}/{filename}"


@pytest.fixture
def redirecting(tmp_path, bucket_url):
    """An app whose downloads redirect to presigned URLs (REPO_BLOB_REDIRECT), with a wheel
    uploaded to its channel 'ch' and a token to read it."""
    app = s3_app(tmp_path / "data", bucket_url, BLOB_REDIRECT=True)
    with app.app_context():
        helper = RepoHelper(get_db())
        made = helper.owner_with_channel("alice", "ch")
        auth = token_auth(helper.token(made.user_id, made.channel_id, "write"))
        client = app.test_client()
        assert send(client, "POST", "/api/repo/ch/", headers=auth,
                    data=twine_form()).status_code == 200  # fmt: skip
        yield app, client, auth


def test_a_redirected_download_goes_to_a_presigned_url_of_the_object(redirecting):
    app, client, auth = redirecting
    store = app.extensions["blobs"]
    sha256 = hashlib.sha256(wheel()).hexdigest()

    response = send(client, "GET", download_url(), headers=auth)

    assert response.status_code == 302 and response.headers["Cache-Control"] == "no-store"
    location = urlsplit(response.headers["Location"])
    query = parse_qs(location.query)
    assert location.path == f"/{store.bucket}/{store.key(sha256)}"
    assert query["X-Amz-Expires"] == ["300"] and "X-Amz-Signature" in query
    with urllib.request.urlopen(response.headers["Location"], timeout=10) as got:
        assert got.read() == wheel()
        assert got.headers["Content-Disposition"] == f"attachment; filename={WHEEL_NAME}"
        assert got.headers["Cache-Control"] == IMMUTABLE
    ranged = urllib.request.Request(response.headers["Location"], headers={"Range": "bytes=0-9"})
    with urllib.request.urlopen(ranged, timeout=10) as got:
        assert got.status == 206 and got.read() == wheel()[:10]


def test_a_redirected_head_is_signed_for_head(redirecting):
    # uv probes with HEAD, and S3 signs the method: a GET URL would answer 403 to it.
    _, client, auth = redirecting
    response = send(client, "HEAD", download_url(), headers=auth)

    assert response.status_code == 302
    probe = urllib.request.Request(response.headers["Location"], method="HEAD")
    with urllib.request.urlopen(probe, timeout=10) as got:
        assert got.status == 200 and got.headers["Content-Length"] == str(len(wheel()))


def test_pep_658_metadata_is_sent_from_here_even_when_downloads_redirect(redirecting):
    _, client, auth = redirecting
    response = send(client, "GET", download_url(filename=f"{WHEEL_NAME}.metadata"),
                    headers=auth)  # fmt: skip
    assert response.status_code == 200 and response.data == META
    assert response.headers["Cache-Control"] == IMMUTABLE


def test_a_proxied_download_is_fetched_once_into_the_local_copy_then_sent_from_it(
    app, shop, client
):
    assert send(client, "POST", "/api/repo/ch/", headers=shop.auth,
                data=twine_form()).status_code == 200  # fmt: skip
    store = app.extensions["blobs"]
    sha256 = hashlib.sha256(wheel()).hexdigest()
    store.cache.delete(sha256)  # as on another host: no local copy yet

    full = send(client, "GET", download_url(), headers=shop.auth)
    assert store.cache.path(sha256).read_bytes() == wheel()
    part = send(client, "GET", download_url(), headers={**shop.auth, "Range": "bytes=0-9"})
    cached = send(client, "GET", download_url(),
                  headers={**shop.auth, "If-None-Match": f'"{sha256}"'})  # fmt: skip

    assert full.status_code == 200 and full.data == wheel()
    assert full.headers["ETag"] == f'"{sha256}"' and full.headers["Cache-Control"] == IMMUTABLE
    assert part.status_code == 206 and part.data == wheel()[:10]
    assert cached.status_code == 304
    assert os.listdir(store.tmp_dir) == []


def test_a_local_copy_is_checked_against_its_name_as_it_is_fetched(store, s3):
    sha256 = store.holding(b"as uploaded").commit()
    store.cache.delete(sha256)
    s3.put_object(Bucket=store.bucket, Key=store.key(sha256), Body=b"bit rot")

    with pytest.raises(OSError, match="does not match its sha256"):
        store.local_path(sha256)
    assert not store.cache.path(sha256).exists() and os.listdir(store.tmp_dir) == []


def test_fsck_hashes_what_the_bucket_holds(app, shop, client, s3):
    assert send(client, "POST", "/api/repo/ch/", headers=shop.auth,
                data=twine_form()).status_code == 200  # fmt: skip
    store, db = app.extensions["blobs"], get_db()
    wheel_sha, meta_sha = hashlib.sha256(wheel()).hexdigest(), hashlib.sha256(META).hexdigest()
    assert maintenance.fsck(db, store).ok

    s3.put_object(Bucket=store.bucket, Key=store.key(wheel_sha), Body=b"bit rot")
    s3.delete_object(Bucket=store.bucket, Key=store.key(meta_sha))
    report = maintenance.fsck(db, store)

    assert (report.checked, report.corrupt, report.missing) == (2, [wheel_sha], [meta_sha])


def test_a_backup_of_an_s3_deployment_restores_into_an_empty_one(app, shop, client, tmp_path):
    assert send(client, "POST", "/api/repo/ch/", headers=shop.auth,
                data=twine_form()).status_code == 200  # fmt: skip
    store = app.extensions["blobs"]
    blobs = stored(app)["blobs"]

    count = maintenance.backup(get_db(), store, tmp_path / "backup",
                               Path(app.config["DATA_DIR"]))  # fmt: skip

    assert count == 2
    assert sorted(p.name for p in (tmp_path / "backup" / "blobs").glob("??/??/*")) == blobs
    elsewhere = {**conftest.STACK.config(), "BLOB_URL": conftest.STACK.s3.fresh_bucket("restored")}
    restored = tmp_path / "restored"
    assert maintenance.restore(tmp_path / "backup", restored, elsewhere) == 2
    again = s3_app(restored, elsewhere["BLOB_URL"], DATABASE_URL=elsewhere.get("DATABASE_URL"))
    with again.app_context():
        copy = again.extensions["blobs"]
        assert stored(again) == {"files": 1, "packages": 1, "blobs": blobs, "tmp": []}
        assert maintenance.fsck(get_db(), copy).ok
        assert list(copy.cache.listing()) == []  # restoring fetched nothing to serve here
        assert send(again.test_client(), "GET", download_url(), headers=shop.auth).data == wheel()
    with pytest.raises(FileExistsError, match="already has a database"):
        maintenance.restore(tmp_path / "backup", restored, elsewhere)


def test_a_store_that_does_not_answer_is_a_503_and_the_upload_leaves_nothing(tmp_path):
    app = s3_app(tmp_path / "data", "s3://no-such-bucket/blobs")
    with app.app_context():
        helper = RepoHelper(get_db())
        made = helper.owner_with_channel("alice", "ch")
        auth = token_auth(helper.token(made.user_id, made.channel_id, "write"))
        response = send(app.test_client(), "POST", "/api/repo/ch/", headers=auth,
                        data=twine_form())  # fmt: skip

        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
        assert "blob store" in response.status
        db = get_db()
        assert db.execute("SELECT count(*) FROM files").fetchone()[0] == 0
        assert os.listdir(app.extensions["blobs"].tmp_dir) == []


def test_a_commit_under_the_write_lock_uploads_again_what_was_removed_since_sync(app, s3):
    store, db = app.extensions["blobs"], get_db()
    pending = store.holding(b"staged, then removed")
    pending.sync()
    s3.delete_object(Bucket=store.bucket, Key=store.key(pending.sha256))

    with transaction(db):
        pending.commit()

    assert body(s3, store, pending.sha256) == b"staged, then removed"
