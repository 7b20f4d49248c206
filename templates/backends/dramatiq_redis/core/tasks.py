"""Scheduled tasks, on Dramatiq: the nightly clean-up, and the rescue of jobs
whose task was lost (core/rescue.py) every minute.

``manage.py scheduler`` (bin/scheduler: one process) sends each actor of
SCHEDULES when its crontab line falls due; the workers run it. Each tick is
claimed in the database before it is sent, so a second scheduler started by
mistake sends nothing twice. A restart computes the next tick from the
clock: ticks that fell while no scheduler ran are skipped, not made up (the
clean-up deletes more the next night). Crontab lines are read in TIME_ZONE.

Your own schedule: copy this, an actor and its line in SCHEDULES.
"""

import dramatiq
from django.conf import settings

from . import cleanup, rescue


@dramatiq.actor(queue_name=settings.TASK_QUEUE)
def clean_up():
    # Dramatiq drops what it keeps of failed tasks itself (after 7 days):
    # no queue to prune here.
    cleanup.clean_up()


@dramatiq.actor(queue_name=settings.TASK_QUEUE)
def rescue_jobs():
    rescue.rescue_jobs()


# Schedule name -> (crontab line, what queues the task).
SCHEDULES = {
    "clean-up": (settings.CLEANUP_SCHEDULE, clean_up.send),
    "rescue": (settings.RESCUE_SCHEDULE, rescue_jobs.send),
}
