"""The clean-up on Dramatiq: scheduled, and run; and the time limit, which
ends the job row failed (the scheduler's own tests: test_scheduler.py)."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.utils import timezone
from dramatiq.middleware import TimeLimitExceeded

from core import tasks
from core.actors import failing_at_the_time_limit
from core.models import Status
from photos.models import Photo

pytestmark = pytest.mark.django_db


def test_the_project_schedules_the_clean_up():
    (line, send) = tasks.SCHEDULES["clean-up"]
    assert (line, send) == (settings.CLEANUP_SCHEDULE, tasks.clean_up.send)


def test_the_task_runs_the_clean_up(owner):
    photo = Photo.objects.create(
        owner=owner, status=Status.FAILED, image=ContentFile(b"x", name="a.png")
    )
    Photo.objects.filter(pk=photo.pk).update(
        created_at=timezone.now() - timedelta(days=30)
    )
    tasks.clean_up()
    assert not Photo.objects.exists()


def test_a_task_stopped_at_the_time_limit_ends_its_row_failed(owner):
    photo = Photo.objects.create(
        owner=owner, status=Status.RUNNING, image=ContentFile(b"x", name="a.png")
    )
    with pytest.raises(TimeLimitExceeded), failing_at_the_time_limit(Photo, photo.pk):
        raise TimeLimitExceeded
    photo.refresh_from_db()
    assert photo.status == Status.FAILED
    assert photo.error == f"The task ran longer than {settings.TASK_TIME_LIMIT} s."
