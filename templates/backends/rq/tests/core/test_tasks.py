"""The schedules on RQ (the clean-up, the rescue): read in TIME_ZONE, queued
once per tick."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.utils import timezone

from core import tasks
from core.management.commands.scheduler import Scheduler
from core.models import Status
from photos.models import Photo
from tests.backend import queued


def scheduler(line):
    scheduler = Scheduler()
    scheduler.register(tasks.clean_up, settings.RQ_QUEUE, cron=line, name="test")
    return scheduler


def test_the_project_schedules_the_clean_up_and_the_rescue():
    project = Scheduler()
    project.load_config_from_file("core.tasks")
    assert {(job.func, job.cron) for job in project.get_jobs()} == {
        (tasks.clean_up, settings.CLEANUP_SCHEDULE),
        (tasks.rescue_jobs, settings.RESCUE_SCHEDULE),
    }


def test_the_schedule_is_read_in_the_time_zone(settings):
    settings.TIME_ZONE = "Europe/Paris"
    (cron_job,) = scheduler("30 3 * * *").get_jobs()
    tick = cron_job.next_enqueue_time.astimezone(ZoneInfo("Europe/Paris"))
    assert (tick.hour, tick.minute) == (3, 30)


def test_a_tick_is_queued_once_however_many_schedulers_run():
    schedulers = [scheduler("* * * * *") for _ in range(3)]
    tick = timezone.now().replace(microsecond=0) - timedelta(seconds=1)
    for each in schedulers:
        each.get_jobs()[0].next_enqueue_time = tick
    queued_by = [len(each.enqueue_jobs()) for each in schedulers]
    assert queued_by == [1, 0, 0]
    assert len(queued(tasks.clean_up)) == 1


def test_a_late_check_queues_one_tick_and_skips_those_it_missed():
    late = scheduler("* * * * *")
    (cron_job,) = late.get_jobs()
    cron_job.next_enqueue_time = timezone.now() - timedelta(minutes=10)
    assert len(late.enqueue_jobs()) == 1
    assert cron_job.next_enqueue_time > timezone.now()
    assert late.enqueue_jobs() == []


@pytest.mark.django_db
def test_the_task_runs_the_clean_up(owner):
    photo = Photo.objects.create(
        owner=owner, status=Status.FAILED, image=ContentFile(b"x", name="a.png")
    )
    Photo.objects.filter(pk=photo.pk).update(
        created_at=timezone.now() - timedelta(days=30)
    )
    tasks.clean_up()
    assert not Photo.objects.exists()
