"""Uploads in an S3-compatible bucket (S3_BUCKET, config/settings.py): the
owner gets the photo and its thumbnail from it, nobody else does, and the
clean-up deletes from the bucket what it would delete from the disk.

They run against a real server, in a bucket of their own that they empty:
never the project's. The server's variables as in production (README.md,
"More than one machine"), and the bucket's name::

    S3_TEST_BUCKET=test-photos S3_ENDPOINT_URL=http://127.0.0.1:8333 \\
    AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \\
    uv run pytest tests/photos/test_bucket.py
"""

import os
from pathlib import PurePath

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from storages.backends.s3 import S3Storage

from config.settings import S3_BUCKET, s3_storage
from core import cleanup
from core.models import Status
from photos import services
from photos.models import Photo
from tests import images
from tests.core.test_cleanup import photo
from tests.photos.test_views import upload

TEST_BUCKET = os.environ.get("S3_TEST_BUCKET", "")
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not TEST_BUCKET, reason="S3_TEST_BUCKET is not set"),
]
FOLDERS = ("photos/originals", "photos/thumbnails")


@pytest.fixture(autouse=True)
def bucket(settings):
    """The test bucket's storage, with no photo files of an earlier test:
    in a folder of this process's own, so that the processes of
    ``pytest -n`` each empty their own."""
    if TEST_BUCKET == S3_BUCKET:
        pytest.fail("S3_TEST_BUCKET is the project's bucket: the tests empty it")
    test_storage = s3_storage(TEST_BUCKET)
    test_storage["OPTIONS"]["location"] = os.environ.get("PYTEST_XDIST_WORKER", "main")
    settings.STORAGES = {**settings.STORAGES, "default": test_storage}
    storage = storages["default"]
    assert isinstance(storage, S3Storage)
    for folder in FOLDERS:
        for name in storage.listdir(folder)[1]:
            storage.delete(f"{folder}/{name}")
    return storage


def names(bucket, folder):
    return set(bucket.listdir(folder)[1])


def test_the_photo_and_its_thumbnail_are_in_the_bucket(bucket, owner_client):
    photo_id = upload(owner_client).json()["id"]
    services.make_thumbnail(photo_id)
    made = Photo.objects.get(pk=photo_id)

    assert names(bucket, "photos/originals") == {PurePath(made.image.name).name}
    assert names(bucket, "photos/thumbnails") == {PurePath(made.thumbnail.name).name}


def test_only_the_owner_gets_the_files(owner_client, other_client):
    data = images.png()
    photo_id = upload(owner_client, data).json()["id"]
    services.make_thumbnail(photo_id)
    body = owner_client.get(f"/photos/{photo_id}/status/").json()

    original = owner_client.get(body["image_url"])
    thumbnail = owner_client.get(body["thumbnail_url"])

    assert (original.status_code, original["Content-Type"]) == (200, "image/png")
    assert b"".join(original.streaming_content) == data
    assert (thumbnail.status_code, thumbnail["Content-Type"]) == (200, "image/webp")
    assert b"".join(thumbnail.streaming_content).startswith(b"RIFF")
    for url in (body["image_url"], body["thumbnail_url"]):
        assert other_client.get(url).status_code == 404


def test_the_clean_up_deletes_from_the_bucket(bucket, owner, settings):
    unfinished = photo(owner, Status.FAILED, days_old=15)
    done = photo(owner, Status.DONE, days_old=400)
    orphan = bucket.save("photos/originals/orphan.png", ContentFile(images.png()))
    assert names(bucket, "photos/originals") == {
        PurePath(name).name for name in (unfinished.image.name, done.image.name, orphan)
    }

    # The orphan is younger than the bound: it may be an upload whose row is
    # not committed yet.
    settings.CLEANUP_ORPHAN_HOURS = 1
    counts = cleanup.clean_up()
    assert (counts["unfinished photos"], counts["orphaned files"]) == (1, 0)
    assert not Photo.objects.filter(pk=unfinished.pk).exists()
    kept = {PurePath(done.image.name).name, PurePath(orphan).name}
    assert names(bucket, "photos/originals") == kept

    # Past the bound (an hour from now): deleted.
    settings.CLEANUP_ORPHAN_HOURS = -1
    assert cleanup.clean_up()["orphaned files"] == 1
    assert names(bucket, "photos/originals") == {PurePath(done.image.name).name}
    assert names(bucket, "photos/thumbnails") == {PurePath(done.thumbnail.name).name}
