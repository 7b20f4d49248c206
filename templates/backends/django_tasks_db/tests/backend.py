"""How the tests drive django-tasks-db: its queue table and its real worker loop.

Every backend's tests/backend.py provides the same names: ``queued(task)``,
the ``run_queued_tasks`` fixture and the ``worker_env`` fixture.
"""

import signal

import pytest
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult

from tests.queued import Queued


def queued(task):
    """The ready, not yet run, calls of ``task``, oldest first."""
    rows = DBTaskResult.objects.filter(
        task_path=task.module_path, status="READY"
    ).order_by("enqueued_at")
    return [
        Queued(list(result.args), result.kwargs, result.task.run_after)
        for result in (row.task_result for row in rows)
    ]


@pytest.fixture
def run_queued_tasks(transactional_db):
    """Run every task that is due, in this process, through ``db_worker``.

    The worker commits its own transactions, hence ``transactional_db``.
    """

    def run():
        handlers = {
            sig: signal.getsignal(sig)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)
        }
        try:
            call_command(
                "db_worker", "--batch", "--no-reload", "--no-startup-delay", verbosity=0
            )
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)

    return run


@pytest.fixture
def worker_env():
    """Environment for a real worker process: the queue is the test database."""
    return {}
