"""The schedules on django-periodic-tasks (the clean-up, the rescue), and the
clean-up's queue pruning."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_periodic_tasks.models import ScheduledTask
from django_periodic_tasks.scheduler import PeriodicTaskScheduler
from django_periodic_tasks.sync import sync_code_schedules
from django_tasks_db.models import DBTaskResult

from core import tasks
from tests.backend import queued
from tests.queued import Queued

pytestmark = pytest.mark.django_db


def test_the_schedules_come_from_the_settings(settings):
    sync_code_schedules()
    schedules = ScheduledTask.objects.values_list(
        "name", "cron_expression", "timezone", "task_path"
    )
    assert set(schedules) == {
        (
            "clean-up",
            settings.CLEANUP_SCHEDULE,
            settings.TIME_ZONE,
            "core.tasks.clean_up",
        ),
        (
            "rescue",
            settings.RESCUE_SCHEDULE,
            settings.TIME_ZONE,
            "core.tasks.rescue_jobs",
        ),
    }


def test_a_due_tick_is_queued_once_however_many_schedulers_look():
    sync_code_schedules()
    ScheduledTask.objects.filter(name="clean-up").update(
        next_run_at=timezone.now() - timedelta(seconds=1)
    )
    for _ in range(3):  # three workers' schedulers, one after the other
        PeriodicTaskScheduler().tick()
    assert queued(tasks.clean_up) == [Queued([], {}, None)]
    assert ScheduledTask.objects.get(name="clean-up").next_run_at > timezone.now()


def test_the_task_prunes_finished_results_past_the_retention(settings):
    tasks.clean_up.enqueue()  # a READY record: never pruned
    old = timezone.now() - timedelta(days=settings.CLEANUP_RETENTION_DAYS + 1)
    recent = timezone.now() - timedelta(days=1)
    for finished_at in (old, recent):
        result = tasks.clean_up.enqueue()
        DBTaskResult.objects.filter(pk=result.id).update(
            status="SUCCESSFUL", finished_at=finished_at
        )

    tasks.clean_up.call()

    assert sorted(DBTaskResult.objects.values_list("status", "finished_at")) == [
        ("READY", None),
        ("SUCCESSFUL", recent),
    ]
