"""The worker: django-tasks-db's ``db_worker``, plus the three things it lacks.

``manage.py worker`` takes db_worker's options (bin/worker passes them) and:

- **A time limit.** A task still running after TASK_TIME_LIMIT seconds is
  stopped (SIGALRM raises ``TimeLimitExceeded`` in it) and recorded failed.
- **Recovery.** A worker that dies (SIGKILL, out of memory, power loss)
  leaves its task RUNNING. Since no live worker runs a task past the time
  limit, a task RUNNING for longer than TASK_TIME_LIMIT +
  TASK_RECOVERY_MARGIN seconds has lost its worker: every worker looks for
  such tasks every TASK_RECOVERY_INTERVAL seconds and queues them again (a
  task that lost TASK_MAX_CLAIMS workers is recorded failed: it may be what
  kills them). The task, and its job row, then run again: the samples are
  idempotent.
- **A second stop signal** (Ctrl+C twice, TERM twice) stops the running task
  and queues it again, instead of recording it failed.
- **Schedules.** django-periodic-tasks' scheduler loop runs in a thread of
  every worker: the schedules need no process of their own (core/tasks.py
  says why a tick is still queued once).
"""

import logging
import signal
import sys
import threading
import time
from datetime import timedelta
from unittest import mock

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone
from django_periodic_tasks.scheduler import PeriodicTaskScheduler
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult

logger = logging.getLogger(__name__)


class TimeLimitExceeded(Exception):
    """Raised inside a task that runs past TASK_TIME_LIMIT."""


class Interrupted(BaseException):
    """Raised inside a task by a second stop signal: not the task's fault."""


def recover_abandoned_tasks():
    """Queue again the tasks whose worker died; return how many."""
    stale = timezone.now() - timedelta(
        seconds=settings.TASK_TIME_LIMIT + settings.TASK_RECOVERY_MARGIN
    )
    recovered = 0
    with transaction.atomic():
        abandoned = DBTaskResult.objects.running().filter(started_at__lt=stale)
        for result in abandoned.select_for_update(skip_locked=True):
            if len(result.worker_ids) >= settings.TASK_MAX_CLAIMS:
                logger.error(
                    "Task %s lost %d workers: failed", result.id, len(result.worker_ids)
                )
                result.status = "FAILED"
                result.finished_at = timezone.now()
                result.exception_class_path = f"{__name__}.WorkerLost"
                result.traceback = (
                    f"The workers running it died {len(result.worker_ids)} times."
                )
            else:
                logger.warning("Task %s lost its worker: queued again", result.id)
                result.status = "READY"
                result.started_at = None
            result.save(
                update_fields=[
                    "status",
                    "started_at",
                    "finished_at",
                    "exception_class_path",
                    "traceback",
                ]
            )
            recovered += 1
    return recovered


class Worker(db_worker.Worker):
    interrupted = False

    def shutdown(self, signum, frame):
        if not self.running and self.running_task:
            # The second signal: stop the task now, and queue it again below.
            self.interrupted = True
            raise Interrupted(signal.strsignal(signum))
        super().shutdown(signum, frame)

    def run_task(self, db_task_result):
        if threading.current_thread() is not threading.main_thread():
            # --reload runs the loop in a thread, where no signal can be
            # handled: development, without a time limit.
            return super().run_task(db_task_result)
        limit = settings.TASK_TIME_LIMIT

        def over_time(signum, frame):
            raise TimeLimitExceeded(f"The task ran longer than {limit} s.")

        previous = signal.signal(signal.SIGALRM, over_time)
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            super().run_task(db_task_result)  # records success or failure
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        if self.interrupted:
            DBTaskResult.objects.filter(pk=db_task_result.pk).update(
                status="READY", started_at=None, finished_at=None
            )
            logger.warning(
                "Task %s stopped by a second signal: queued again", db_task_result.pk
            )
            self.reset_signals()
            sys.exit(1)

    def run(self):
        watcher = threading.Thread(target=self.recover_forever, daemon=True)
        watcher.start()
        scheduler = PeriodicTaskScheduler(
            interval=settings.PERIODIC_TASKS_SCHEDULER_INTERVAL
        )
        scheduler.start()
        try:
            super().run()
        finally:
            scheduler.stop()

    def recover_forever(self):
        while self.running:
            try:
                recover_abandoned_tasks()
            except Exception:
                logger.exception("Looking for abandoned tasks failed")
            finally:
                close_old_connections()
            time.sleep(settings.TASK_RECOVERY_INTERVAL)


class Command(db_worker.Command):
    help = "Run the database worker, with a time limit and recovery of lost tasks"

    def handle(self, *args, **options):
        # db_worker's handle() builds the worker by its module-level name.
        with mock.patch.object(db_worker, "Worker", Worker):
            return super().handle(*args, **options)
