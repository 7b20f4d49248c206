"""``manage.py scheduler``: RQ's cron scheduler for the schedules of core/tasks.py.

RQ's ``CronScheduler`` (django-rq's ``rqcron``) keeps its schedules in
memory and queues every job that falls due: two of them queue each tick
twice, and they read crontab lines in UTC. This one, otherwise RQ's:

- claims each tick in Redis first (SET NX): one tick is queued once, even if
  a second scheduler is started by mistake;
- reads crontab lines in TIME_ZONE, as the other backends do;
- queues through the project's queue, with its JSON serializer.

A restart computes the next tick from the clock: ticks that fell while no
scheduler ran are skipped, never made up, and never repeated.
"""

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter
from django.conf import settings
from django.core.management.base import BaseCommand
from django_rq import get_queue
from django_rq.cron import DjangoCronScheduler

logger = logging.getLogger(__name__)

# How long a claim is kept: long past any tick a running scheduler could
# still be about to queue.
CLAIM_SECONDS = 3600


def local_now():
    return datetime.now(ZoneInfo(settings.TIME_ZONE))


class Scheduler(DjangoCronScheduler):
    def register(self, *args, **kwargs):
        cron_job = super().register(*args, **kwargs)
        if cron_job.cron:
            # RQ computed the first tick in UTC.
            next_tick = croniter(cron_job.cron, local_now()).get_next(datetime)
            cron_job.next_enqueue_time = next_tick
        return cron_job

    def enqueue_jobs(self):
        enqueued = []
        for cron_job in self.get_jobs():
            if not cron_job.should_run():
                continue
            tick = cron_job.next_enqueue_time or local_now()
            claim = f"rq:cron_tick:{cron_job.queue_name}:{cron_job.name}"
            claim += f":{tick.timestamp():.0f}"
            if self.connection.set(claim, self.name, nx=True, ex=CLAIM_SECONDS):
                get_queue(cron_job.queue_name).enqueue(
                    cron_job.func,
                    *cron_job.args,
                    **cron_job.kwargs,
                    **cron_job.job_options,
                )
                logger.info("Queued %s for %s.", cron_job.name, tick)
                enqueued.append(cron_job)
            else:
                logger.info(
                    "%s for %s: queued by another scheduler.", cron_job.name, tick
                )
            # The next tick after now (not after this one): a late check
            # skips the ticks it missed instead of queuing them in a burst.
            cron_job.set_enqueue_time(local_now())
        return enqueued


class Command(BaseCommand):
    help = "Queue the scheduled tasks of core/tasks.py when due; run exactly one."

    def handle(self, *args, **options):
        scheduler = Scheduler(logging_level=logging.INFO)
        scheduler.load_config_from_file("core.tasks")
        logger.info("Scheduler started: %d schedules.", len(scheduler.get_jobs()))
        scheduler.start()
