"""The time limit on Dramatiq, which ends the job row failed (the scheduled
clean-up's tests: test_scheduler.py)."""

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from dramatiq.middleware import TimeLimitExceeded

from core.actors import failing_at_the_time_limit
from core.models import Status
from photos.models import Photo

pytestmark = pytest.mark.django_db


def test_a_task_stopped_at_the_time_limit_ends_its_row_failed(owner):
    photo = Photo.objects.create(
        owner=owner, status=Status.RUNNING, image=ContentFile(b"x", name="a.png")
    )
    with pytest.raises(TimeLimitExceeded), failing_at_the_time_limit(Photo, photo.pk):
        raise TimeLimitExceeded
    photo.refresh_from_db()
    assert photo.status == Status.FAILED
    assert photo.error == f"The task ran longer than {settings.TASK_TIME_LIMIT} s."
