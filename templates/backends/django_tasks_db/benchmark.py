"""How benchmarks/ drives django-tasks-db: a no-op task and the workers to compare.

Copied into the benchmark's app as ``bench_app/tasks.py``; not part of a
generated project.
"""

import time

from django.tasks import task
from django_tasks_db.models import DBTaskResult

from .models import Tick


@task()
def noop(enqueued_at):
    Tick.objects.create(enqueued_at=enqueued_at, started_at=time.time())


def enqueue():
    noop.enqueue(time.time())


def clear():
    DBTaskResult.objects.all().delete()


# The library's own command, as its documentation starts it, and variants;
# the best of them is compared with bin/worker.
RAW = {
    "CLI default": ["python", "manage.py", "db_worker"],
    "--interval 0.1": ["python", "manage.py", "db_worker", "--interval", "0.1"],
}
