"""The clean-up's schedule on Dramatiq: read in TIME_ZONE, sent once per
tick; and the time limit, which ends the job row failed."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.utils import timezone
from dramatiq.middleware import TimeLimitExceeded

from core import tasks
from core.actors import failing_at_the_time_limit
from core.management.commands.scheduler import Schedule, local_now
from core.models import Status, Throttle
from photos.models import Photo
from tests.backend import queued

pytestmark = pytest.mark.django_db


def schedule(line, actor=tasks.clean_up):
    return Schedule("test", line, actor, local_now())


def test_the_project_schedules_the_clean_up():
    (line, actor) = tasks.SCHEDULES["clean-up"]
    assert (line, actor) == (settings.CLEANUP_SCHEDULE, tasks.clean_up)


def test_the_schedule_is_read_in_the_time_zone(settings):
    settings.TIME_ZONE = "Europe/Paris"
    tick = schedule("30 3 * * *").next_tick.astimezone(ZoneInfo("Europe/Paris"))
    assert (tick.hour, tick.minute) == (3, 30)


def test_a_tick_is_sent_once_however_many_schedulers_run():
    schedules = [schedule("* * * * *") for _ in range(3)]
    now = local_now()
    for each in schedules:
        each.next_tick = now - timedelta(seconds=1)
    assert [each.send_if_due(now) for each in schedules] == [True, False, False]
    assert len(queued(tasks.clean_up)) == 1


def test_a_late_check_sends_one_tick_and_skips_those_it_missed():
    late = schedule("* * * * *")
    late.next_tick = local_now() - timedelta(minutes=10)
    assert late.send_if_due(local_now())
    assert late.next_tick > local_now()
    assert not late.send_if_due(local_now())
    assert len(queued(tasks.clean_up)) == 1


class Unreachable:
    """An actor whose broker is away."""

    def send(self):
        raise ConnectionError("the broker is away")


def test_a_tick_that_could_not_be_sent_stays_unclaimed():
    away = schedule("* * * * *", Unreachable())
    away.next_tick = local_now() - timedelta(seconds=1)
    with pytest.raises(ConnectionError):
        away.send_if_due(local_now())
    assert not Throttle.objects.exists()


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
