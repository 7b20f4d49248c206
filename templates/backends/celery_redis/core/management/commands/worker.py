"""``manage.py worker``: Celery's worker for this project's queue, set up once.

What ``celery worker`` leaves to each project, decided here (the README says
why, with the benchmark's figures):

- This process becomes Celery's main process (exec): the stop signal of the
  process managers reaches it. SIGTERM is a warm shutdown: no new task, the
  running ones finish (within the time limit), then the worker exits 0. A
  second SIGTERM changes nothing; SIGQUIT (or Ctrl+C twice) is a cold
  shutdown: the running tasks stop and go back to the queue.
- A prefork pool of ``--concurrency`` processes: a task that crashes its
  process loses that process only, and the time limits need processes.
  Each holds a database connection (CONN_MAX_AGE).
- A pool process is replaced after a task that left it over
  ``--max-memory-per-child`` (KiB).
- One queue (TASK_QUEUE): a worker never takes another project's tasks.
- No mingle or gossip: workers do not need to know of each other, and they
  cost every start a second and the broker a message per worker a second.
- A node name of its own (pid@host): two workers on one host do not clash.
"""

import os
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run a Celery worker on this project's queue (see the module's docstring)."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--concurrency", type=int, default=2, help="Pool processes."
        )
        parser.add_argument(
            "--max-memory-per-child",
            type=int,
            default=256_000,
            help="KiB a pool process may hold after a task before it is replaced.",
        )

    def handle(self, *args, concurrency, max_memory_per_child, **options):
        celery = str(Path(sys.executable).with_name("celery"))
        arguments = [
            *("--app", "config", "worker", "--loglevel", "INFO"),
            *("--pool", "prefork", "--concurrency", str(concurrency)),
            *("--max-memory-per-child", str(max_memory_per_child)),
            *("--queues", settings.TASK_QUEUE),
            *("--hostname", f"{os.getpid()}@%h"),
            *("--without-mingle", "--without-gossip"),
        ]
        sys.stdout.flush()
        os.execv(celery, [celery, *arguments])  # noqa: S606 (Celery's own command)
