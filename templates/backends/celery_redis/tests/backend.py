"""How the tests drive Celery: a queue of their own on the real broker, and
Celery's own tracer around each task, as in a worker.

Every backend's tests/backend.py provides the same names: ``queued(task)``,
the ``run_queued_tasks`` fixture and the ``worker_env`` fixture; and here
``make_due()``, for the retries' tests.
"""

import contextlib
import uuid
from datetime import datetime

import pytest
from celery.app.trace import trace_task
from django.conf import settings
from kombu import Exchange, Queue

from config.celery import app
from tests.queued import Queued

# The tests' own queue, never the project's: a worker running on the same
# broker in development must not take the tests' tasks.
settings.TASK_QUEUE = f"test-{uuid.uuid4().hex}"
app.conf.task_default_queue = settings.TASK_QUEUE
QUEUE = Queue(settings.TASK_QUEUE, Exchange(settings.TASK_QUEUE), settings.TASK_QUEUE)


@pytest.fixture(autouse=True)
def empty_queue():
    """Each test starts and ends with nothing queued."""
    empty()
    yield
    empty()


def empty():
    with app.connection_for_write() as connection:
        QUEUE(connection.default_channel).declare()
        QUEUE(connection.default_channel).purge()


@contextlib.contextmanager
def taken():
    """Every message of the tests' queue, taken: those not acknowledged in
    the block go back to the queue after it."""
    with app.connection_for_read() as connection:
        queue = QUEUE(connection.default_channel)
        queue.declare()
        messages = []
        while (message := queue.get(no_ack=False)) is not None:
            messages.append(message)
        try:
            yield messages
        finally:
            for message in messages:
                if not message.acknowledged:
                    message.requeue()


def due(message):
    eta = message.headers.get("eta")
    return eta is None or datetime.fromisoformat(eta) <= datetime.now().astimezone()


def queued(task):
    """The calls of ``task`` waiting in the queue or scheduled for later."""
    with taken() as messages:
        return [
            Queued(
                list(args),
                kwargs,
                datetime.fromisoformat(message.headers["eta"])
                if message.headers.get("eta")
                else None,
            )
            for message in messages
            for args, kwargs, _ in [message.decode()]
            if message.headers["task"] == task.name
        ]


def make_due():
    """Queue the tasks held for later again, due now, as their time would
    come (the same task id and attempt)."""
    with taken() as messages:
        for message in messages:
            args, kwargs, _ = message.decode()
            task = app.tasks[message.headers["task"]]
            task.apply_async(
                args,
                kwargs,
                task_id=message.headers["id"],
                retries=message.headers["retries"],
            )
            message.ack()


@pytest.fixture
def run_queued_tasks(transactional_db):
    """Run every task that is due, in this thread, through Celery's tracer
    (retries, failure handlers), as a worker would, until none is left.

    A message taken here and put back is marked redelivered by the broker;
    the tests run it as a first delivery (the real worker's tests count
    redeliveries: tests/core/test_commands.py).
    """

    def run():
        while True:
            with taken() as messages:
                ready = [message for message in messages if due(message)]
                for message in ready:
                    process(message)
                    message.ack()
            if not ready:
                return

    return run


def process(message):
    headers = message.headers
    args, kwargs, _ = message.decode()
    request = {
        "id": headers["id"],
        "retries": headers["retries"],
        "eta": headers.get("eta"),
        "delivery_info": {"routing_key": settings.TASK_QUEUE, "redelivered": False},
    }
    task = app.tasks[headers["task"]]
    trace_task(task, headers["id"], args, kwargs, request, app=app)


@pytest.fixture
def worker_env():
    """A real worker process works the tests' queue."""
    return {"TASK_QUEUE": settings.TASK_QUEUE}
