"""How benchmarks/ drives Dramatiq: a no-op actor and the workers to compare.

Copied into the benchmark's app as ``bench_app/tasks.py`` (the worker loads
the ``tasks`` modules of the apps); not part of a generated project.
"""

import time

import dramatiq
from django.conf import settings

from .models import Tick


@dramatiq.actor(queue_name=settings.TASK_QUEUE)
def noop(enqueued_at):
    Tick.objects.create(enqueued_at=enqueued_at, started_at=time.time())


def enqueue():
    noop.send(time.time())


def clear():
    dramatiq.get_broker().flush(settings.TASK_QUEUE)


RUN = ["python", "manage.py", "rundramatiq"]
# django-dramatiq's command as its documentation starts it (a process per
# CPU, 8 threads each), and other counts; the best of them is compared with
# bin/worker.
RAW = {
    "CLI default": RUN,
    "-p 1 -t 8": [*RUN, "-p", "1", "-t", "8"],
    "-p 2 -t 1": [*RUN, "-p", "2", "-t", "1"],
    "-p 2 -t 4": [*RUN, "-p", "2", "-t", "4"],
    "-p 4 -t 4": [*RUN, "-p", "4", "-t", "4"],
}
