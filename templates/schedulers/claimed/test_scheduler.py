"""The scheduler (manage.py scheduler): crontab lines read in TIME_ZONE, each
tick queued once however many schedulers run, the ticks it missed skipped;
and the clean-up it queues."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.utils import timezone

from core import tasks
from core.management.commands.scheduler import Schedule, local_now
from core.models import Status, Throttle
from photos.models import Photo
from tests.backend import queued

pytestmark = pytest.mark.django_db

CLEAN_UP = tasks.SCHEDULES["clean-up"][1]  # what queues the clean-up


def schedule(line, send=CLEAN_UP):
    return Schedule("test", line, send, local_now())


def test_the_project_schedules_the_clean_up():
    line, send = tasks.SCHEDULES["clean-up"]
    assert line == settings.CLEANUP_SCHEDULE
    send()
    assert len(queued(tasks.clean_up)) == 1


def test_the_project_schedules_the_rescue():
    line, send = tasks.SCHEDULES["rescue"]
    assert line == settings.RESCUE_SCHEDULE
    send()
    assert len(queued(tasks.rescue_jobs)) == 1


def test_the_task_runs_the_clean_up(owner):
    photo = Photo.objects.create(
        owner=owner, status=Status.FAILED, image=ContentFile(b"x", name="a.png")
    )
    Photo.objects.filter(pk=photo.pk).update(
        created_at=timezone.now() - timedelta(days=30)
    )
    tasks.clean_up()
    assert not Photo.objects.exists()


def test_the_schedule_is_read_in_the_time_zone(settings):
    settings.TIME_ZONE = "Europe/Paris"
    tick = schedule("30 3 * * *").next_tick.astimezone(ZoneInfo("Europe/Paris"))
    assert (tick.hour, tick.minute) == (3, 30)


def test_a_tick_is_queued_once_however_many_schedulers_run():
    schedules = [schedule("* * * * *") for _ in range(3)]
    now = local_now()
    for each in schedules:
        each.next_tick = now - timedelta(seconds=1)
    assert [each.send_if_due(now) for each in schedules] == [True, False, False]
    assert len(queued(tasks.clean_up)) == 1


def test_a_late_check_queues_one_tick_and_skips_those_it_missed():
    late = schedule("* * * * *")
    late.next_tick = local_now() - timedelta(minutes=10)
    assert late.send_if_due(local_now())
    assert late.next_tick > local_now()
    assert not late.send_if_due(local_now())
    assert len(queued(tasks.clean_up)) == 1


def unreachable():
    """Queue a task on a broker that is away."""
    raise ConnectionError("the broker is away")


def test_a_tick_that_could_not_be_queued_stays_unclaimed():
    away = schedule("* * * * *", unreachable)
    away.next_tick = local_now() - timedelta(seconds=1)
    with pytest.raises(ConnectionError):
        away.send_if_due(local_now())
    assert not Throttle.objects.exists()
