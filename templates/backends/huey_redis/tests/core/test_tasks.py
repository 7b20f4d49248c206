"""The schedules on huey (the clean-up, the rescue): in TIME_ZONE, queued
once per tick."""

from datetime import datetime, timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from core import tasks
from core.models import Status
from photos.models import Photo

pytestmark = pytest.mark.django_db


def test_the_schedule_is_read_in_the_time_zone(settings):
    settings.TIME_ZONE = "Europe/Paris"
    due = tasks.once_per_tick("test", "30 3 * * *")
    # huey's clock is UTC: 03:30 in Paris is 02:30 UTC in winter, 01:30 in summer.
    assert due(datetime(2026, 1, 15, 2, 30))
    assert due(datetime(2026, 7, 15, 1, 30))
    assert not due(datetime(2026, 1, 15, 3, 30))


def test_a_tick_is_due_once_however_many_consumers_check():
    due = tasks.once_per_tick("test", "* * * * *")
    minute = datetime(2026, 1, 15, 2, 30)
    assert [due(minute) for _ in range(3)] == [True, False, False]
    assert due(datetime(2026, 1, 15, 2, 31))


def test_only_the_last_claims_are_kept(memory_queue):
    due = tasks.once_per_tick("test", "* * * * *")
    for minute in range(10):
        due(datetime(2026, 1, 15, 2, minute))
    assert memory_queue.result_store_size() == 2  # the last claim and its name


def test_the_rescue_is_due_every_minute():
    for minute in range(3):
        due = HUEY.read_periodic(datetime(2026, 1, 15, 2, minute))
        assert any(isinstance(task, tasks.rescue_jobs.task_class) for task in due)


def test_the_task_runs_the_clean_up(owner):
    photo = Photo.objects.create(
        owner=owner, status=Status.FAILED, image=ContentFile(b"x", name="a.png")
    )
    Photo.objects.filter(pk=photo.pk).update(
        created_at=timezone.now() - timedelta(days=30)
    )
    tasks.clean_up.call_local()
    assert not Photo.objects.exists()
