"""Scheduled tasks, on Celery: the nightly clean-up, and the rescue of jobs
whose task was lost (core/rescue.py) every minute.

``manage.py scheduler`` (bin/scheduler: one process) queues each task of
SCHEDULES when its crontab line falls due; the workers run it. Each tick is
claimed in the database before it is queued, so a second scheduler started
by mistake queues nothing twice: Celery's beat must run exactly once, and
django-celery-beat, whose database schedule would need a lock anyway, does
not install beside Django 6.1. A restart computes the next tick from the
clock: ticks that fell while no scheduler ran are skipped, not made up (the
clean-up deletes more the next night). Crontab lines are read in TIME_ZONE.

Your own schedule: a task and its line in SCHEDULES.
"""

from celery import shared_task
from django.conf import settings

from . import cleanup, rescue


@shared_task
def clean_up():
    # No result backend: Celery keeps no records of its own to prune here.
    cleanup.clean_up()


@shared_task
def rescue_jobs():
    rescue.rescue_jobs()


# Schedule name -> (crontab line, what queues the task).
SCHEDULES = {
    "clean-up": (settings.CLEANUP_SCHEDULE, clean_up.delay),
    "rescue": (settings.RESCUE_SCHEDULE, rescue_jobs.delay),
}
