"""How benchmarks/ drives huey: a no-op task and the consumers to compare.

Copied into the benchmark's app as ``bench_app/tasks.py`` (run_huey finds
tasks in ``tasks`` modules); not part of a generated project.
"""

import time

from huey.contrib.djhuey import HUEY, db_task

from .models import Tick


@db_task()
def noop(enqueued_at):
    Tick.objects.create(enqueued_at=enqueued_at, started_at=time.time())


def enqueue():
    noop(time.time())


def clear():
    HUEY.storage.flush_queue()
    HUEY.storage.flush_schedule()


RUN_HUEY = ["python", "manage.py", "run_huey"]
# huey's consumer as its documentation starts it (1 worker thread), and the
# other worker types and counts; the best of them is compared with bin/worker.
RAW = {
    "CLI default": RUN_HUEY,
    "-w 2": [*RUN_HUEY, "-w", "2"],
    "-w 4": [*RUN_HUEY, "-w", "4"],
    "-w 8": [*RUN_HUEY, "-w", "8"],
    "-k process -w 2": [*RUN_HUEY, "-k", "process", "-w", "2"],
    "-k process -w 4": [*RUN_HUEY, "-k", "process", "-w", "4"],
}
