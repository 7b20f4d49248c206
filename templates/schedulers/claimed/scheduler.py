"""``manage.py scheduler``: queues the tasks of core/tasks.py's SCHEDULES.

This one:

- reads crontab lines (croniter; a sixth field counts seconds) in TIME_ZONE;
- claims each tick in the database before it queues it (a row of
  core.models.Throttle, whose key names the tick: the insert of a second
  scheduler fails), so one tick is sent once even if a second scheduler is
  started by mistake, and the claim needs no broker of its own;
- after a pause or a restart, sends the tick that fell last (once) and skips
  those before it, never making them up.

SIGTERM stops it at once: it runs no task itself.
"""

import logging
import signal
import sys
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections, transaction

from core.models import Throttle
from core.tasks import SCHEDULES

logger = logging.getLogger(__name__)

# How long a claim is kept: long past any tick a running scheduler could
# still be about to send. The nightly clean-up deletes older ones.
CLAIM_SECONDS = 24 * 3600


def local_now():
    return datetime.now(ZoneInfo(settings.TIME_ZONE))


class Schedule:
    """One crontab line and the call that queues its task."""

    def __init__(self, name, line, send, now):
        self.name, self.line, self.send = name, line, send
        self.next_tick = croniter(line, now).get_next(datetime)

    def send_if_due(self, now):
        """Queue the task for the last tick due by ``now``, unless another
        scheduler claimed it; True when this one queued it."""
        if now < self.next_tick:
            return False
        tick = croniter(self.line, now).get_prev(datetime)  # the latest one due
        self.next_tick = croniter(self.line, now).get_next(datetime)
        # The claim commits with the send: a send that fails (the broker is
        # away) leaves the tick to another scheduler.
        with transaction.atomic():
            _, claimed = Throttle.objects.get_or_create(
                key=f"tick:{tick.timestamp():.0f}:{self.name}"[:64],
                defaults={"expires_at": tick + timedelta(seconds=CLAIM_SECONDS)},
            )
            if claimed:
                self.send()
        if claimed:
            logger.info("Sent %s for %s.", self.name, tick)
        else:
            logger.info("%s for %s: sent by another scheduler.", self.name, tick)
        return claimed


class Command(BaseCommand):
    help = "Send the scheduled tasks of core/tasks.py when due; run exactly one."

    def handle(self, *args, **options):
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
        now = local_now()
        schedules = [
            Schedule(name, line, send, now) for name, (line, send) in SCHEDULES.items()
        ]
        logger.info("Scheduler started: %d schedules.", len(schedules))
        while True:
            now = local_now()
            for schedule in schedules:
                try:
                    schedule.send_if_due(now)
                except Exception:
                    # The database or the broker is away: this tick is lost
                    # to this scheduler; the next one is tried as usual.
                    logger.exception("Sending %s failed", schedule.name)
                finally:
                    close_old_connections()
            wake = min(schedule.next_tick for schedule in schedules)
            time.sleep(min(max((wake - local_now()).total_seconds(), 0.05), 1))
