{%- set broker = cookiecutter._backends[cookiecutter.task_backend].broker -%}
"""How the tests drive Dramatiq: a queue of their own on the real broker,
and Dramatiq's own middleware around each task.

Every backend's tests/backend.py provides the same names: ``queued(task)``,
the ``run_queued_tasks`` fixture and the ``worker_env`` fixture; and here
``make_due()``, for the retries' tests.
"""

import sys
import uuid
from datetime import UTC, datetime

import dramatiq
import pytest
from django.conf import settings
from dramatiq import Message
from dramatiq.common import dq_name{% if broker == "redis" %}, xq_name{% endif %}

from tests.queued import Queued

# The tests' own queue, never the project's: a worker running on the same
# broker in development must not take the tests' tasks. Named before the
# task modules bind their queue at import.
assert "notifications.tasks" not in sys.modules, "task modules imported too early"
settings.TASK_QUEUE = f"test-{uuid.uuid4().hex}"
QUEUES = [settings.TASK_QUEUE, dq_name(settings.TASK_QUEUE)]


def broker():
    return dramatiq.get_broker()


def empty():
    """Drop every message of the tests' queue: waiting, delayed and dead."""
    broker().flush(settings.TASK_QUEUE)
{%- if broker == "redis" %}
    broker().do_purge(xq_name(settings.TASK_QUEUE))
{%- endif %}


@pytest.fixture(autouse=True)
def empty_queue():
    """Each test starts and ends with nothing queued."""
    empty()
    yield
    empty()


def messages():
    """Every message waiting in the tests' queue or delayed, in no order."""
{%- if broker == "redis" %}
    for name in QUEUES:
        key = f"{broker().namespace}:{name}.msgs"
        yield from map(Message.decode, broker().client.hvals(key))
{%- else %}
    # Read without acknowledging: closing the channel puts them back.
    broker().get_queue_message_counts(settings.TASK_QUEUE)  # declares them
    channel = broker().connection.channel()
    try:
        for name in QUEUES:
            while True:
                _, _, body = channel.basic_get(name, auto_ack=False)
                if body is None:
                    break
                yield Message.decode(body)
    finally:
        channel.close()
{%- endif %}


def make_due():
    """Move the delayed messages to the queue, as a worker does once their
    time comes."""
    delayed = [message for message in messages() if "eta" in message.options]
    empty()
    for message in delayed:
        options = {key: value for key, value in message.options.items() if key != "eta"}
        broker().enqueue(message.copy(queue_name=settings.TASK_QUEUE, options=options))


def queued(task):
    """The calls of ``task`` waiting in the queue or scheduled for later."""
    return [
        Queued(
            list(message.args),
            message.kwargs,
            datetime.fromtimestamp(message.options["eta"] / 1000, UTC)
            if "eta" in message.options
            else None,
        )
        for message in list(messages())
        if message.actor_name == task.actor_name
    ]


@pytest.fixture
def run_queued_tasks(transactional_db):
    """Run every task that is due, in this thread, inside Dramatiq's
    middleware (retries, database connections), as a worker would.

    The middleware closes the database connection around a task, which
    only a committed (transactional) test database survives.
    """

    def run():
        consumer = broker().consume(settings.TASK_QUEUE, prefetch=1, timeout=200)
        try:
            for message in consumer:
                if message is None:  # nothing more is due
                    return
                process(message)
                if message.failed:
                    consumer.nack(message)
                else:
                    consumer.ack(message)
        finally:
            consumer.close()

    return run


def process(message):
    actor = broker().get_actor(message.actor_name)
    broker().emit_before("process_message", message)
    try:
        result = actor(*message.args, **message.kwargs)
    except Exception as exc:
        broker().emit_after("process_message", message, exception=exc)
    else:
        broker().emit_after("process_message", message, result=result)


@pytest.fixture
def worker_env():
    """A real worker process works the tests' queue."""
    return {"TASK_QUEUE": settings.TASK_QUEUE}
