{%- set redis = cookiecutter._backends[cookiecutter.task_backend].broker == "redis" -%}
"""What the project adds to Dramatiq's broker (DRAMATIQ_BROKER in settings).

Loaded with the broker, as Django starts: before the models.
"""

import os
{% if redis %}
from dramatiq.brokers.redis import RedisBroker
{%- endif %}
from dramatiq.middleware import Middleware

from core import forks
from core.heartbeat import heartbeat
{%- if redis %}

# How long an idle worker waits, at most, between two looks for a task.
# Dramatiq's Redis broker polls: it looks again after 5 ms, then waits twice
# as long each time it finds nothing, up to this (Dramatiq's: 1 s, so a task
# queued to an idle worker waited up to 1 s). Each look is one short Redis
# command: at 50 ms, an idle worker sends at most 80 a second (2 processes,
# each looking at the queue and at the delayed tasks).
POLL_MS = 50


# Out of Dramatiq's 1_000_000 (its default: 1_000).
MAINTENANCE_CHANCE = 100_000


class PollingRedisBroker(RedisBroker):
    """Dramatiq's Redis broker, whose idle workers look for tasks every
    POLL_MS at most."""

    def consume(self, queue_name, prefetch=1, timeout=POLL_MS):
        return super().consume(queue_name, prefetch, min(timeout, POLL_MS))
{%- endif %}


class WorkerProcesses(Middleware):
    """What each worker process does as it starts.

    It dies with the main process that forked it, even when that one alone
    is killed (core/forks.py): left running, it would hold tasks that no
    one supervises.{% if redis %} And it looks after the tasks of dead workers:
    Redis puts them back once their worker's heartbeat is older than
    TASK_RECOVERY_SECONDS, when a command of a live worker runs the broker's
    maintenance. Here one command in ten does, workers' only: maintenance
    costs each command about 1 ms (Redis' KEYS for every dead worker it
    finds), which the web processes' enqueues should not pay.{% endif %}
    """

    def after_process_boot(self, broker):
        forks.die_with(os.getppid())
{%- if redis %}
        broker.maintenance_chance = MAINTENANCE_CHANCE
{%- endif %}


class Heartbeat(Middleware):
    """Signs of life of each worker process for a liveness probe, which
    fails when a task outlives its time limit: the worker is stuck, not
    busy (core/heartbeat.py)."""

    def after_worker_boot(self, broker, worker):
        heartbeat.start()

    def before_process_message(self, broker, message):
        heartbeat.started(message.message_id)

    def after_process_message(self, broker, message, *, result=None, exception=None):
        heartbeat.finished(message.message_id)

    def after_skip_message(self, broker, message):
        heartbeat.finished(message.message_id)
