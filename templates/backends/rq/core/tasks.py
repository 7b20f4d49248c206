"""Scheduled tasks, on RQ: the nightly clean-up, and the rescue of jobs whose
task was lost (core/rescue.py) every minute.

``manage.py scheduler`` (bin/scheduler: one process) reads the schedules
registered here with RQ's ``cron.register`` and queues each job when it is
due; the workers run it. Each tick is claimed in Redis before it is queued,
so a second scheduler started by mistake queues nothing twice. A restart
computes the next tick from the clock: ticks that fell while no scheduler ran
are skipped, not made up (the clean-up deletes more the next night).
Crontab lines are read in TIME_ZONE.

Your own schedule: copy this, a function and its ``cron.register`` line.
"""

from django.conf import settings
from rq import cron

from . import cleanup, rescue


def clean_up():
    # RQ drops the records of finished jobs itself: results after 500 s,
    # failed jobs after RQ_FAILURE_TTL. No queue to prune here.
    cleanup.clean_up()


cron.register(
    clean_up,
    settings.RQ_QUEUE,
    cron=settings.CLEANUP_SCHEDULE,
    name="clean-up",
    failure_ttl=settings.RQ_FAILURE_TTL,
)


def rescue_jobs():
    rescue.rescue_jobs()


cron.register(
    rescue_jobs,
    settings.RQ_QUEUE,
    cron=settings.RESCUE_SCHEDULE,
    name="rescue",
    failure_ttl=settings.RQ_FAILURE_TTL,
)
