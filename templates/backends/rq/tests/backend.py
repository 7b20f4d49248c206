"""How the tests drive RQ: a queue of their own on the real Redis, and RQ's
own worker loop.

Every backend's tests/backend.py provides the same names: ``queued(task)``,
the ``run_queued_tasks`` fixture and the ``worker_env`` fixture.
"""

import signal
import sys
import uuid
from datetime import UTC

import pytest
from django.conf import settings
from django_rq import get_queue
from rq import SimpleWorker
from rq.registry import ScheduledJobRegistry

from tests.queued import Queued

# The tests' own queue, never the project's: a worker running on the same
# Redis in development must not take the tests' jobs. Named before the
# task modules bind their queue at import.
assert "notifications.tasks" not in sys.modules, "task modules imported too early"
_queue = f"test-{uuid.uuid4().hex}"
settings.RQ_QUEUES[_queue] = settings.RQ_QUEUES.pop(settings.RQ_QUEUE)
settings.RQ_QUEUE = _queue


def queue():
    return get_queue(settings.RQ_QUEUE)


@pytest.fixture(autouse=True)
def empty_queue():
    """Each test starts and ends with nothing queued."""
    queue().empty()
    registry = ScheduledJobRegistry(queue=queue())
    for job_id in registry.get_job_ids():
        registry.remove(job_id, delete_job=True)
    yield
    queue().empty()
    for job_id in registry.get_job_ids():
        registry.remove(job_id, delete_job=True)


def queued(task):
    """The calls of ``task`` waiting in the queue or scheduled for later."""
    name = f"{task.__module__}.{task.__name__}"
    registry = ScheduledJobRegistry(queue=queue())
    scheduled = {
        job_id: registry.get_scheduled_time(job_id) for job_id in registry.get_job_ids()
    }
    jobs = queue().get_jobs() + [queue().fetch_job(job_id) for job_id in scheduled]
    return [
        Queued(
            list(job.args),
            job.kwargs,
            scheduled[job.id].replace(tzinfo=UTC) if job.id in scheduled else None,
        )
        for job in jobs
        if job.func_name == name
    ]


@pytest.fixture
def run_queued_tasks(transactional_db):
    """Run every job that is due, in this process, through RQ's worker loop.

    The jobs commit their own transactions, hence ``transactional_db``.
    """

    def run():
        handlers = {
            sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        worker = SimpleWorker(
            [queue()], connection=queue().connection, serializer=queue().serializer
        )
        try:
            worker.work(burst=True)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)

    return run


@pytest.fixture
def worker_env():
    """A real worker process works the tests' queue."""
    return {"RQ_QUEUE": settings.RQ_QUEUE}
