"""How benchmarks/ drives Celery: a no-op task and the workers to compare.

Copied into the benchmark's app as ``bench_app/tasks.py`` (the worker loads
the ``tasks`` modules of the apps); not part of a generated project.
"""

import time

from celery import shared_task
from django.conf import settings

from config.celery import app

from .models import Tick


@shared_task
def noop(enqueued_at):
    Tick.objects.create(enqueued_at=enqueued_at, started_at=time.time())


def enqueue():
    noop.delay(time.time())


def clear():
    app.control.purge()


def celery(*options):
    return [
        "celery",
        "--app",
        "config",
        "worker",
        "--loglevel",
        "INFO",
        "--queues",
        settings.TASK_QUEUE,
        *options,
    ]


# Celery's worker as its documentation starts it (prefork, a process per
# CPU, Celery's own defaults: acknowledged early, 4 tasks prefetched per
# process), and other pools and counts; the best of them is compared with
# bin/worker.
RAW = {
    "CLI default": celery(),
    "-c 4": celery("--concurrency", "4"),
    "-c 2 --without-mingle --without-gossip": celery(
        "--concurrency", "2", "--without-mingle", "--without-gossip"
    ),
    # No time limits: Celery enforces them in prefork pools only.
    "--pool threads -c 8": celery("--pool", "threads", "--concurrency", "8"),
}
