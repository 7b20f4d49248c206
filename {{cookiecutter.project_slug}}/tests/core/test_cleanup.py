"""The nightly clean-up deletes what is past its age, and nothing else."""

import os
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from core import cleanup
from core.models import Status, Throttle
from photos.models import Photo
from tests import images

pytestmark = pytest.mark.django_db


def photo(owner, status, days_old):
    created = Photo.objects.create(
        owner=owner, status=status, image=ContentFile(images.png(), name="a.png")
    )
    if status == Status.DONE:
        created.thumbnail.save("t.webp", ContentFile(b"webp"))
    Photo.objects.filter(pk=created.pk).update(
        created_at=timezone.now() - timedelta(days=days_old)
    )
    return created


def orphan(media_root, name, hours_old):
    path = media_root / "photos" / "originals" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"left over")
    then = (timezone.now() - timedelta(hours=hours_old)).timestamp()
    os.utime(path, (then, then))
    return path


def test_deletes_old_unfinished_photos_and_old_orphans_only(owner, media_root):
    old_failed = photo(owner, Status.FAILED, days_old=15)
    old_pending = photo(owner, Status.PENDING, days_old=15)
    old_done = photo(owner, Status.DONE, days_old=400)
    recent_failed = photo(owner, Status.FAILED, days_old=13)
    old_orphan = orphan(media_root, "old.png", hours_old=25)
    new_orphan = orphan(media_root, "new.png", hours_old=23)

    counts = cleanup.clean_up()

    assert counts == {
        "unfinished photos": 2,
        "orphaned files": 1,
        "expired login counts": 0,
    }
    assert set(Photo.objects.all()) == {old_done, recent_failed}
    for gone in (old_failed, old_pending):
        assert not (media_root / gone.image.name).exists()
    for kept in (old_done, recent_failed):
        assert (media_root / kept.image.name).exists()
    assert (media_root / old_done.thumbnail.name).exists()
    assert not old_orphan.exists()
    assert new_orphan.exists()


def test_a_second_run_finds_nothing(owner, media_root):
    photo(owner, Status.RUNNING, days_old=30)
    orphan(media_root, "old.png", hours_old=48)
    cleanup.clean_up()
    assert set(cleanup.clean_up().values()) == {0}


def test_the_backend_prunes_its_queue_past_the_retention(settings):
    seen = []

    def prune_queue(*, before):
        seen.append(before)
        return 3

    counts = cleanup.clean_up(prune_queue=prune_queue)

    assert counts["finished queue records"] == 3
    expected = timezone.now() - timedelta(days=settings.CLEANUP_RETENTION_DAYS)
    assert abs(seen[0] - expected) < timedelta(seconds=5)


def test_nothing_to_do_on_an_empty_media_root(media_root):
    assert not media_root.exists()
    assert set(cleanup.clean_up().values()) == {0}


def test_deletes_the_login_counts_of_windows_that_are_over():
    now = timezone.now()
    for key, expires_at in [("over", now), ("open", now + timedelta(seconds=60))]:
        Throttle.objects.create(key=key, count=3, expires_at=expires_at)
    assert cleanup.clean_up()["expired login counts"] == 1
    assert list(Throttle.objects.values_list("key", flat=True)) == ["open"]
