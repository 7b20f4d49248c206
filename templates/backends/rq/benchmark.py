"""How benchmarks/ drives RQ: a no-op job and the workers to compare.

Copied into the benchmark's app as ``bench_app/tasks.py``; not part of a
generated project.
"""

import time

from django.conf import settings
from django_rq import get_queue, job

from .models import Tick


@job(settings.RQ_QUEUE)
def noop(enqueued_at):
    Tick.objects.create(enqueued_at=enqueued_at, started_at=time.time())


def enqueue():
    noop.delay(time.time())


def clear():
    queue = get_queue(settings.RQ_QUEUE)
    queue.empty()
    for registry in (queue.finished_job_registry, queue.failed_job_registry):
        for job_id in registry.get_job_ids():
            registry.remove(job_id, delete_job=True)


# django-rq's own command as its documentation starts it (plus the JSON
# serializer, without which it cannot read the project's jobs), and the
# other worker class; the best of them is compared with bin/worker.
def rqworker(*options):
    return [
        "python",
        "manage.py",
        "rqworker",
        "--serializer",
        "rq.serializers.JSONSerializer",
        *options,
        settings.RQ_QUEUE,
    ]


RAW = {
    "CLI default": rqworker(),
    "--worker-class SimpleWorker": rqworker("--worker-class", "rq.SimpleWorker"),
}
