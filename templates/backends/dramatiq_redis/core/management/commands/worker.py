"""``manage.py worker``: Dramatiq's worker for this project's queue, set up once.

What ``rundramatiq`` leaves to each project, decided here (the README says
why, with the benchmark's figures):

- This process becomes Dramatiq's main process (exec, as ``rundramatiq``
  does): the stop signal of the process managers reaches it. It supervises
  the worker processes it forks, which die with it even when it alone is
  killed (core/broker.py).
- ``--processes`` and ``--threads``: tasks run in threads; each thread that
  runs a task holds a database connection (CONN_MAX_AGE), so a worker uses
  up to processes x threads of PostgreSQL's ``max_connections``.
- One queue (TASK_QUEUE): a worker never takes another project's tasks.
- SIGTERM lets the running tasks finish (up to TASK_TIME_LIMIT + 5 s), then
  the worker exits 0; a second SIGTERM kills the worker processes at once:
  their tasks are not acknowledged, and the broker gives them to the next
  worker.
- Logs: the worker processes' go through the project's LOGGING, like
  every other process's, once Django is set up in them; the main process
  logs in Dramatiq's format, to stderr.
"""

import os
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django_dramatiq.management.commands.rundramatiq import Command as RunDramatiq


class Command(BaseCommand):
    help = "Run Dramatiq workers on this project's queue (see the module's docstring)."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--processes", type=int, default=2, help="Worker processes."
        )
        parser.add_argument(
            "--threads", type=int, default=4, help="Threads per worker process."
        )

    def handle(self, *args, processes, threads, **options):
        dramatiq = str(Path(sys.executable).with_name("dramatiq"))
        # The broker module, then the tasks modules of the apps.
        modules = RunDramatiq().discover_tasks_modules()
        arguments = [
            *("--processes", str(processes), "--threads", str(threads)),
            *("--queues", settings.TASK_QUEUE),
            "--worker-shutdown-timeout",
            str((settings.TASK_TIME_LIMIT + 5) * 1000),
        ]
        sys.stdout.flush()
        os.execv(dramatiq, [dramatiq, *arguments, *modules])  # noqa: S606 (Dramatiq's own command)
