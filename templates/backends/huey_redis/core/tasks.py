"""Scheduled tasks, on huey: the nightly clean-up, and the rescue of jobs
whose task was lost (core/rescue.py: huey is at-most-once) every minute.

Every worker's consumer checks huey's periodic tasks once a minute (huey's
resolution) and at start-up. A tick is queued only by the consumer that
claims it first in huey's storage (``once_per_tick``): one tick queues one
task however many workers run, and a consumer restarted within the minute
of a tick already queued does not queue it again. Ticks that fall while no
worker runs are skipped, not made up (the clean-up deletes more the next
night). No scheduler process to run, or to lose.

Your own schedule: copy this, a ``@db_periodic_task`` of ``once_per_tick``.
"""

from datetime import UTC
from zoneinfo import ZoneInfo

from django.conf import settings
from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task

from . import cleanup, rescue


def once_per_tick(name, line):
    """huey's test for a crontab ``line`` in TIME_ZONE, true once per tick.

    huey passes the time in UTC, minute by minute; the first consumer to
    claim ``name`` for that minute wins, the others' checks are false. Only
    the claims of the last two ticks are kept.
    """
    matches = crontab(*line.split(), strict=True)
    zone = ZoneInfo(settings.TIME_ZONE)

    def due(utc_now):
        local = utc_now.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)
        if not matches(local):
            return False
        tick = utc_now.strftime("%Y-%m-%dT%H:%M")
        if not HUEY.put_if_empty(f"tick:{name}:{tick}", tick):
            return False
        previous = HUEY.get(f"tick:{name}:last", peek=True)
        HUEY.put(f"tick:{name}:last", tick)
        if previous and previous != tick:
            HUEY.delete(f"tick:{name}:{previous}")
        return True

    return due


@db_periodic_task(
    once_per_tick("clean-up", settings.CLEANUP_SCHEDULE),
    timeout=settings.TASK_TIME_LIMIT,
)
def clean_up():
    # huey keeps no records of finished tasks (results are off): no queue
    # to prune.
    cleanup.clean_up()


@db_periodic_task(
    once_per_tick("rescue", settings.RESCUE_SCHEDULE),
    timeout=settings.TASK_TIME_LIMIT,
)
def rescue_jobs():
    rescue.rescue_jobs()
