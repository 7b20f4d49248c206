"""How the tests drive huey: an in-memory queue, and huey's own execution.

Every backend's tests/backend.py provides the same names: ``queued(task)``,
the ``run_queued_tasks`` fixture and the ``worker_env`` fixture.
"""

from datetime import UTC

import pytest
from django.db import connection
from huey.contrib.djhuey import HUEY
from huey.storage import MemoryStorage

from tests.queued import Queued


@pytest.fixture(autouse=True)
def memory_queue():
    """Tests queue into memory: nothing reaches a real queue unless asked."""
    real = HUEY.storage
    HUEY.storage = MemoryStorage(HUEY.name)
    yield HUEY.storage
    HUEY.storage = real


def queued(task):
    """The calls of ``task`` waiting in the queue or scheduled for later."""
    messages = [*HUEY.pending(), *HUEY.scheduled()]
    return [
        Queued(
            list(message.args),
            message.kwargs,
            message.eta.replace(tzinfo=UTC) if message.eta else None,
        )
        for message in messages
        if isinstance(message, task.task_class)
    ]


@pytest.fixture
def run_queued_tasks(transactional_db):
    """Run every task that is due, in this process, as a consumer would.

    @db_task closes the database connection around a task, which only a
    committed (transactional) test database survives.
    """

    def run():
        while (message := HUEY.dequeue()) is not None:
            HUEY.execute(message)

    return run


@pytest.fixture
def worker_env(memory_queue):
    """A real queue that this process and a worker process share.

    The worker's settings name its queue after its database, the test
    database; this process uses the queue of that name on the same storage.
    """
    HUEY.storage = HUEY.storage_class(
        str(connection.settings_dict["NAME"]), **HUEY.storage_kwargs
    )
    yield {}
    HUEY.storage.flush_all()
