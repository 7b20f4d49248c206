"""The worker: runs django-tasks-db's queue, one task at a time per process.

django-tasks-db's own ``db_worker`` polls, never notices a dead worker and
has no time limit. This loop keeps its queue table, its options and its
signals, and adds (core/queue.py has the database side):

- **Instant pick-up.** On PostgreSQL an idle worker waits for the NOTIFY
  that every enqueue sends, and looks at the queue every ``--interval``
  seconds (5) in case one was missed; on SQLite it polls every 0.2 s.
- **Leases.** A thread renews the worker's lease and queues again the
  tasks of workers whose lease lapsed: a killed worker's task runs again
  within TASK_LEASE_SECONDS plus a third of it (20 s), whatever its time
  limit. A worker whose claim was taken over writes nothing (core/claims.py).
- **A time limit.** A task still running after TASK_TIME_LIMIT seconds is
  stopped (SIGALRM raises ``TimeLimitExceeded`` in it) and recorded failed.
- **Infrastructure is not the task's fault.** A task that loses its
  database connection is queued again, after TASK_RETRY_DELAY seconds
  (doubling each time; failed after TASK_DB_RETRIES such runs).
- **A second stop signal** (Ctrl+C twice, TERM twice) stops the running task
  and queues it again, instead of recording it failed.
- **Schedules.** django-periodic-tasks' scheduler loop runs in a thread of
  every worker: the schedules need no process of their own (core/tasks.py
  says why a tick is still queued once).
- **Signs of life** for a liveness probe (core/heartbeat.py): a task that
  outlives its time limit means the worker is stuck, not busy.

The worker keeps its database connections open (CONN_MAX_AGE is for
requests): an idle worker opens none and runs about one cheap query a
second.
"""

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from functools import partial

import psycopg
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.core.management.base import CommandError
from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.tasks.signals import task_finished, task_started
from django.utils import timezone
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV, run_with_reloader
from django.utils.crypto import get_random_string
from django_periodic_tasks.scheduler import PeriodicTaskScheduler
from django_tasks_db.compat import TaskContext
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult

from core import claims, queue
from core.heartbeat import heartbeat

logger = logging.getLogger(__name__)

# Seconds between two looks at the queue while idle.
SAFETY_NET_INTERVAL = 5.0  # PostgreSQL: a NOTIFY wakes the worker before
POLL_INTERVAL = 0.2  # SQLite: nothing else does


class TimeLimitExceeded(Exception):
    """Raised inside a task that runs past TASK_TIME_LIMIT."""


class Interrupted(BaseException):
    """Raised inside a task by a second stop signal: not the task's fault."""


class Stop(BaseException):
    """Raised by a stop signal while the worker waits for work."""


class Listener:
    """A connection of its own that LISTENs for enqueues (PostgreSQL)."""

    def __init__(self, alias):
        self.alias = alias
        self.connection = None

    def wait(self, timeout):
        """Return on a notification or after ``timeout`` seconds; at once
        when it has just begun to LISTEN (at the start, after a lost
        connection): a task queued before that notified nobody, and the
        worker looks at the queue before it waits."""
        try:
            if self.connection is None:
                self.connection = connections.create_connection(self.alias)
                self.connection.ensure_connection()
                self.connection.set_autocommit(True)
                self.connection.connection.execute(f"LISTEN {queue.CHANNEL}")
                return
            for _ in self.connection.connection.notifies(timeout=timeout, stop_after=1):
                pass
        except (DatabaseError, psycopg.Error) as exc:
            logger.warning("Listening for new tasks failed (%r): polling", exc)
            self.close()
            time.sleep(timeout)

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class LeaseKeeper(threading.Thread):
    """Renews the worker's lease, and queues again the tasks of lost workers."""

    daemon = True

    def __init__(self, worker):
        super().__init__(name="lease-keeper")
        self.worker = worker
        self.stopped = threading.Event()

    def run(self):
        worker_id = self.worker.worker_id
        while not self.stopped.wait(settings.TASK_LEASE_SECONDS / 3):
            try:
                queue.renew_lease(worker_id)
                queue.requeue_lost(worker_id, running=self.worker.current)
            except DatabaseError as exc:
                logger.warning("Renewing the lease failed: %r", exc)
                connections.close_all()  # this thread's: a fresh one next time
            except Exception:
                # Not the database's: say so, and keep the lease alive.
                logger.exception("Renewing the lease failed")

    def stop(self):
        self.stopped.set()
        self.join()
        with contextlib.suppress(DatabaseError):  # it lapses on its own
            queue.drop_lease(self.worker.worker_id)


class Worker:
    def __init__(self, *, tasks, description, interval, batch, max_tasks, worker_id):
        self.tasks = tasks  # the rows this worker may run
        self.description = description
        self.batch = batch
        self.max_tasks = max_tasks
        self.worker_id = worker_id
        self.listener = Listener(queue.database().alias) if queue.listens() else None
        if interval is None:
            interval = SAFETY_NET_INTERVAL if self.listener else POLL_INTERVAL
        self.interval = interval
        self.running = True
        self.running_task = False
        self.waiting = False
        self.interrupted = False
        self.tasks_run = 0
        self.current = None  # the pk of the running task

    # -- signals --------------------------------------------------------------

    def configure_signals(self):
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
            signal.signal(signum, self.shutdown)

    def shutdown(self, signum, frame):
        name = signal.strsignal(signum)
        if not self.running and self.running_task:
            # The second signal: stop the task now, and queue it again.
            self.interrupted = True
            raise Interrupted(name)
        logger.warning(
            "Received %s - shutting down gracefully after the running task "
            "(again: stop it and queue it again)",
            name,
        )
        self.running = False
        if self.waiting:
            raise Stop(name)

    # -- the loop ---------------------------------------------------------------

    def run(self):
        queue.renew_lease(self.worker_id)
        keeper = LeaseKeeper(self)
        keeper.start()
        scheduler = PeriodicTaskScheduler(
            interval=settings.PERIODIC_TASKS_SCHEDULER_INTERVAL
        )
        scheduler.start()
        if self.listener:  # before the first look at the queue
            self.listener.wait(0)
        logger.info(
            "Starting worker worker_id=%s queues=%s wake-up=%s",
            self.worker_id,
            self.description,
            "notify" if self.listener else f"poll every {self.interval} s",
        )
        claimed = None  # the next row, claimed with the last run's outcome
        heartbeat.start()
        try:
            while self.running:
                result, claimed = claimed or self.claim(), None
                if result is not None:
                    claimed = self.run_task(result)
                    if self.max_tasks and self.tasks_run >= self.max_tasks:
                        break
                elif self.batch:
                    break
                else:
                    self.wait()
        except Stop:
            pass
        finally:
            if claimed is not None:  # claimed as the worker was told to stop
                self.write(queue.requeue, claimed)
            scheduler.stop()
            keeper.stop()
            if self.listener:
                self.listener.close()
        logger.info("Worker %s stopped", self.worker_id)

    def claim(self):
        try:
            return queue.claim(self.tasks, self.worker_id)
        except (OperationalError, InterfaceError) as exc:
            # Locked (SQLite) or unreachable: look again after a wait.
            logger.warning("Claiming a task failed: %r", exc)
            connections.close_all()
            return None

    def wait(self):
        timeout = self.interval
        try:
            due = queue.next_due(self.tasks)
        except DatabaseError:
            due = None
        if due is not None:
            timeout = max(0, min(timeout, (due - timezone.now()).total_seconds()))
        self.waiting = True  # from here, a stop signal raises Stop
        try:
            if not self.running:  # the signal came just before
                return
            if self.listener:
                self.listener.wait(timeout)
            else:
                time.sleep(timeout)
        finally:
            self.waiting = False

    # -- one task ---------------------------------------------------------------

    def run_task(self, result):
        """Run a claimed row; return the next row, claimed with its outcome."""
        self.running_task = True
        self.current = result.pk
        try:
            # One that outlives its time limit: the worker is stuck, not busy.
            with heartbeat.running(result.pk):
                claimed = self.run_claimed(result)
        finally:
            self.running_task = False
            self.current = None
            self.tasks_run += 1
        if self.interrupted:
            logger.warning(
                "Task %s stopped by a second signal: queued again", result.pk
            )
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            sys.exit(1)
        return claimed

    def run_claimed(self, result):
        try:
            task = result.task
        except (ImportError, SuspiciousOperation) as exc:
            logger.exception("Task %s cannot be loaded", result.pk)
            return self.write(queue.fail, result, exc, then=self.then())[1]
        sender = type(task.get_backend())
        task_started.send(sender=sender, task_result=result.task_result)
        args, kwargs = result.args_kwargs["args"], result.args_kwargs["kwargs"]
        if task.takes_context:
            args = [TaskContext(task_result=result.task_result), *args]
        with claims.claimed(partial(queue.still_claimed, result)):
            try:
                with self.time_limit():
                    value = task.call(*args, **kwargs)
            except Interrupted:
                self.write(queue.requeue, result)
                return None
            except (OperationalError, InterfaceError) as exc:
                logger.warning("Task %s lost the database: %r", result.pk, exc)
                self.write(queue.retry_later, result, exc)
                return None
            except BaseException as exc:
                written, claimed = self.write(queue.fail, result, exc, then=self.then())
            else:
                try:
                    written, claimed = self.write(
                        queue.succeed, result, value, then=self.then()
                    )
                except TypeError as exc:  # a return value JSON cannot hold
                    written, claimed = self.write(
                        queue.fail, result, exc, then=self.then()
                    )
        if written:
            task_finished.send(sender=sender, task_result=result.task_result)
        return claimed

    def then(self):
        """What to claim with a run's outcome (core/queue.py): the next task,
        unless the worker stops after this one."""
        if not self.running:
            return None
        if self.max_tasks and self.tasks_run + 1 >= self.max_tasks:
            return None
        return (self.tasks, self.worker_id)

    def write(self, outcome, result, *args, **kwargs):
        """Write a run's outcome (``queue.succeed``, ``fail``, ``requeue``,
        ``retry_later``); return (whether it was written, the row claimed
        with it). A run whose claim was taken over writes nothing. A
        database that is away is waited for, a second at a time, until it
        is back or the worker is told to stop (its lease then lapses, and
        another worker queues the task again)."""
        while True:
            try:
                written, claimed = outcome(result, *args, **kwargs)
            except (OperationalError, InterfaceError) as exc:
                connections.close_all()
                if not self.running:
                    logger.error("Task %s: outcome not written: %r", result.pk, exc)
                    return False, None
                time.sleep(1)
                continue
            if not written:
                logger.warning(
                    "Task %s: another run took it over; this run's outcome "
                    "(%s %s) is dropped",
                    result.pk,
                    outcome.__name__,
                    ", ".join(map(repr, args)),
                )
            return written, claimed

    def time_limit(self):
        return TimeLimit(settings.TASK_TIME_LIMIT)


class TimeLimit:
    """SIGALRM after ``seconds``: raises TimeLimitExceeded in the task.

    Only the main thread handles signals: under --reload (development) the
    loop runs in a thread, without a time limit.
    """

    def __init__(self, seconds):
        self.seconds = seconds
        self.active = threading.current_thread() is threading.main_thread()

    def __enter__(self):
        if self.active:
            self.previous = signal.signal(signal.SIGALRM, self.over_time)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc_info):
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)

    def over_time(self, signum, frame):
        raise TimeLimitExceeded(f"The task ran longer than {self.seconds} s.")


class Command(db_worker.Command):
    help = "Run the database worker: instant pick-up, leases, a time limit"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(
            interval=None,  # SAFETY_NET_INTERVAL or POLL_INTERVAL
            # Unique, and it says where the worker runs: the host, the process.
            worker_id=f"{socket.gethostname()[:40]}.{os.getpid()}.{get_random_string(8)}",
        )

    def handle(self, *, verbosity, reload, queue_name, exclude_queues, **options):
        self.configure_logging(verbosity)
        names = queue_name.split(",")
        if exclude_queues and "*" not in names:
            raise CommandError("--exclude-queues can only be used with --queue-name=*")
        tasks = DBTaskResult.objects.filter(backend_name=options["backend_name"])
        if "*" not in names:
            tasks = tasks.filter(queue_name__in=names)
        if exclude_queues:
            tasks = tasks.exclude(queue_name__in=exclude_queues.split(","))
        worker = Worker(
            tasks=tasks,
            description=queue_name,
            interval=options["interval"],
            batch=options["batch"],
            max_tasks=options["max_tasks"],
            worker_id=options["worker_id"],
        )
        if reload and not options["batch"]:
            if os.environ.get(DJANGO_AUTORELOAD_ENV) == "true":  # the child
                worker.configure_signals()
            run_with_reloader(worker.run)
        else:
            worker.configure_signals()
            worker.run()
