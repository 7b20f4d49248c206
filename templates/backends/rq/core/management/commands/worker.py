"""``manage.py worker``: RQ's worker for this project's queue, set up once.

What ``rqworker`` leaves to each project, decided here (the README says why,
with the benchmark's figures):

- ``SimpleWorker``: jobs run in this process. RQ's default forks a process
  for every job, which costs more than most jobs. Memory stays bounded by
  ``--max-jobs``: after that many jobs the worker starts afresh in place
  (exec: the same process id, new memory), so process managers never see
  it exit unless they asked.
- JSON jobs, read with the queue's serializer: nothing is unpickled.
- RQ's scheduler runs in one worker at a time (``with_scheduler``): it moves
  jobs queued for later (retries with a delay) to the queue when due.
- Recovery in a bounded time: a job whose worker died stays "started" until
  its heartbeat lapses, TASK_TIME_LIMIT + TASK_RECOVERY_MARGIN seconds after
  it started (RQ's margin is 60 s); the workers' maintenance, every
  TASK_RECOVERY_INTERVAL seconds (RQ's default: 10 min, and not at all while
  a worker waits for a job), then runs it again if its ``Retry`` allows.
- SIGTERM (or SIGINT) lets the running job finish; a second one stops it,
  and the job is retried like one whose worker died.
- What the worker forks (RQ's scheduler process) dies with it, even when
  the worker alone is killed (core/forks.py): left running, the scheduler
  held a copy of the worker's Redis connection, so Redis kept the dead
  worker's wait for a job open and handed it the next job, taken by no one.
- Signs of life for a liveness probe (core/heartbeat.py), which fails when
  a job outlives its time limit: the worker is stuck, not busy.
"""

import logging
import os
import signal
import socket
import sys
import uuid

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django_rq.workers import get_worker
from redis.exceptions import ConnectionError
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from core import forks
from core.heartbeat import heartbeat

logger = logging.getLogger(__name__)


class Worker(SimpleWorker):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("maintenance_interval", settings.TASK_RECOVERY_INTERVAL)
        super().__init__(*args, **kwargs)
        self.stop_requested = False

    @property
    def dequeue_timeout(self):
        # Wait for a job this long at most, then heartbeat and maintain:
        # RQ's default waits worker_ttl - 15 = 405 s between maintenances.
        return settings.TASK_RECOVERY_INTERVAL

    def get_heartbeat_ttl(self, job):
        # The job runs in this process, which sends no heartbeat meanwhile:
        # it is found dead once it outlives its time limit by the margin.
        if job.timeout is None or job.timeout < 0:
            return super().get_heartbeat_ttl(job)
        return job.timeout + settings.TASK_RECOVERY_MARGIN

    def execute_job(self, job, queue):
        # A job that outlives its time limit means the worker is stuck
        # (core/heartbeat.py); a long one inside it, busy.
        with heartbeat.running(job.id):
            return super().execute_job(job, queue)

    def request_stop(self, signum, frame):
        if not self.stop_requested:
            logger.info(
                "Received %s: shutting down gracefully once the running job "
                "ends (a second signal stops it; it then runs again).",
                signal.Signals(signum).name,
            )
        self.stop_requested = True
        super().request_stop(signum, frame)


class Command(BaseCommand):
    help = "Run an RQ worker on this project's queue (see the module's docstring)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--max-jobs",
            type=int,
            default=None,
            help="Start afresh (same process) after this many jobs.",
        )

    def handle(self, *args, max_jobs, verbosity, **options):
        forks.children_die_with_this_process()
        heartbeat.start()  # signs of life for the liveness probe
        worker = get_worker(
            settings.RQ_QUEUE,
            worker_class=Worker,
            serializer=JSONSerializer,
            # Unique, and it says where the worker runs (RQ's default: a UUID).
            name=f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}",
        )
        try:
            worker.work(
                with_scheduler=True,
                max_jobs=max_jobs,
                logging_level="DEBUG" if verbosity > 1 else "INFO",
            )
        except ConnectionError as exc:
            raise CommandError(f"Redis cannot be reached: {exc}") from exc
        if worker.stop_requested:
            return
        # Not asked to stop: it ran --max-jobs jobs (or lost Redis for longer
        # than a command may wait). Start afresh, as the same process.
        logger.info("Worker starting afresh (after %s jobs).", max_jobs)
        connections.close_all()
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, *sys.argv])  # noqa: S606 (this command again)
