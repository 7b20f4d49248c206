"""A task's job row on Celery when the task fails for good: stopped at the
time limit, or lost with its worker too often (the scheduled clean-up's
tests: test_scheduler.py)."""

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.base import ContentFile

from core import jobs
from core.models import Status, Throttle
from photos import tasks as photo_tasks
from photos.models import Photo

pytestmark = pytest.mark.django_db


@pytest.fixture
def running(owner):
    return Photo.objects.create(
        owner=owner, status=Status.RUNNING, image=ContentFile(b"x", name="a.png")
    )


def test_a_task_stopped_at_the_time_limit_ends_its_row_failed(running):
    photo_tasks.make_thumbnail.on_failure(
        SoftTimeLimitExceeded(), "id", (running.pk,), {}, None
    )
    running.refresh_from_db()
    assert running.status == Status.FAILED
    assert running.error == f"The task ran longer than {settings.TASK_TIME_LIMIT} s."


class Request:
    """What a worker knows of a message: its id, attempt and delivery."""

    def __init__(self, redelivered):
        self.id, self.retries = "a-task-id", 0
        self.delivery_info = {"redelivered": redelivered}


def test_a_first_delivery_is_neither_counted_nor_refused():
    for _ in range(settings.TASK_MAX_REDELIVERIES + 2):
        jobs.count_redelivery(Request(redelivered=False))  # raises nothing
    assert not Throttle.objects.exists()


def test_a_message_redelivered_past_the_bound_fails_and_so_does_its_row(running):
    for _ in range(settings.TASK_MAX_REDELIVERIES):
        jobs.count_redelivery(Request(redelivered=True))
    with pytest.raises(jobs.WorkerLostTooOften) as lost:
        jobs.count_redelivery(Request(redelivered=True))
    photo_tasks.make_thumbnail.on_failure(lost.value, "id", (running.pk,), {}, None)
    running.refresh_from_db()
    assert running.status == Status.FAILED
    assert running.error == "The task stopped its worker every time it ran."
