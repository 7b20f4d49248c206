"""The thumbnail task on huey: a run that raises is tried again, twice."""

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from photos import services, tasks
from tests.backend import queued

pytestmark = pytest.mark.django_db


@pytest.fixture
def database_gone(monkeypatch):
    def make_thumbnail(photo_id):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "make_thumbnail", make_thumbnail)


def test_a_run_that_lost_the_database_is_tried_again_later(
    database_gone, run_queued_tasks
):
    tasks.make_thumbnail(7)
    delays = []
    for _ in range(2):
        before = timezone.now()
        run_queued_tasks()
        (retry,) = queued(tasks.make_thumbnail)
        assert retry.args == [7]
        delays.append(retry.run_after - before)
        # Due now, as the scheduler would make it once the delay is over.
        (message,) = tasks.make_thumbnail.huey.scheduled()
        tasks.make_thumbnail.huey.storage.flush_schedule()
        message.eta = None
        tasks.make_thumbnail.huey.enqueue(message)
    run_queued_tasks()  # the third run raises too: no more tries

    assert queued(tasks.make_thumbnail) == []
    assert timedelta(seconds=9) < delays[0] <= timedelta(seconds=11)
    assert timedelta(seconds=19) < delays[1] <= timedelta(seconds=21)
