"""Scheduled tasks, on django-periodic-tasks: the nightly clean-up, and the
rescue of jobs whose task was lost (core/rescue.py) every minute.

The schedule is a row in the database (the admin lists it under Periodic
tasks). Every worker (``manage.py worker``) runs the scheduler's loop; the
worker that finds the row due locks it (SKIP LOCKED: the others pass it by),
queues the task and moves the row to its next time, in one transaction. One
tick queues one task however many workers run, and a tick is never queued
twice. A restart recomputes the next time from the clock: ticks that fell
while no worker ran are skipped, not made up (the clean-up deletes more the
next night).

Your own schedule: copy this, a ``@task()`` under ``@scheduled_task``.
"""

from django.conf import settings
from django.tasks import task
from django_periodic_tasks import scheduled_task
from django_tasks_db.models import DBTaskResult

from . import cleanup, rescue


def prune_finished_results(*, before):
    """Delete the queue's records of tasks that finished before ``before``."""
    deleted, _ = DBTaskResult.objects.finished().filter(finished_at__lt=before).delete()
    return deleted


@scheduled_task(
    cron=settings.CLEANUP_SCHEDULE, timezone=settings.TIME_ZONE, name="clean-up"
)
@task()
def clean_up():
    cleanup.clean_up(prune_queue=prune_finished_results)


@scheduled_task(
    cron=settings.RESCUE_SCHEDULE, timezone=settings.TIME_ZONE, name="rescue"
)
@task()
def rescue_jobs():
    rescue.rescue_jobs()
