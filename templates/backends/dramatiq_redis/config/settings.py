{%- set backend = cookiecutter._backends[cookiecutter.task_backend] -%}
# Dramatiq through django-dramatiq: tasks are actors (@dramatiq.actor),
# queued in {{ cookiecutter._brokers[backend.broker].label }}, run by `manage.py worker` (bin/worker) and scheduled by
# `manage.py scheduler` (bin/scheduler).
import re

INSTALLED_APPS += ["django_dramatiq"]

# Every task has a time limit: past it, Dramatiq interrupts the task
# (TimeLimitExceeded, raised in its thread) and the job ends failed. A
# worker asked to stop waits this plus 5 s for its running tasks; the
# process managers' stop grace ({{ backend.stop_grace_seconds }} s) is this plus 10 s.
TASK_TIME_LIMIT = int(os.environ.get("TASK_TIME_LIMIT") or {{ backend.stop_grace_seconds - 10 }})
# One queue, named after the database unless TASK_QUEUE says otherwise:
# projects and environments that share a broker do not take each other's
# tasks. (A name holds letters, digits and _ . - only: a SQLite path's
# slashes become _.)
TASK_QUEUE = os.environ.get("TASK_QUEUE") or re.sub(
    r"[^\w.-]", "_", str(DATABASES["default"]["NAME"])
)
{%- if backend.broker == "redis" %}
# A message whose worker died (SIGKILL, out of memory) goes back to the
# queue once the worker's heartbeat is this many seconds old. Dramatiq's
# default is 60 s, looked for on a random 1 command in 1000: minutes. Here
# one worker command in ten looks (core/broker.py): TASK_RECOVERY_SECONDS
# after the kill, plus a second or so. A worker frozen this long (not dead)
# has its messages run twice: tasks must be idempotent, as the samples are.
TASK_RECOVERY_SECONDS = int(os.environ.get("TASK_RECOVERY_SECONDS") or 15)


{% include "brokers/redis/bounded_url.py" %}


DRAMATIQ_BROKER = {
    # Dramatiq's, with idle workers that look for tasks more often.
    "BROKER": "core.broker.PollingRedisBroker",
    "OPTIONS": {
        "url": _bounded(os.environ.get("REDIS_URL") or "redis://localhost:6379/0"),
        "heartbeat_timeout": TASK_RECOVERY_SECONDS * 1000,
        # Worker processes only look for dead workers' tasks (core/broker.py).
        "maintenance_chance": 0,
    },
}
{%- else %}


def _bounded(url):
    """RABBITMQ_URL with every wait bounded: connecting (three tries), each
    socket read, a blocked publisher, and a dead peer found by AMQP
    heartbeats (pika reads these from the URL's query; those you set
    yourself are kept)."""
    bounds = "connection_attempts=3&retry_delay=2&socket_timeout=10"
    bounds += "&blocked_connection_timeout=30&heartbeat=30"
    return f"{url}{'&' if '?' in url else '?'}{bounds}"


DRAMATIQ_BROKER = {
    "BROKER": "dramatiq.brokers.rabbitmq.RabbitmqBroker",
    "OPTIONS": {
        "url": _bounded(os.environ.get("RABBITMQ_URL") or "amqp://localhost:5672/%2F"),
        # An enqueue returns once RabbitMQ has the message (publisher
        # confirms): a message is never lost between the web and the broker.
        "confirm_delivery": True,
    },
}
# pika logs each connection it opens at INFO: web processes open many.
LOGGING["loggers"]["pika"] = {"level": "WARNING"}
{%- endif %}
# Middleware, listed in full: django-dramatiq's default list names one that
# Dramatiq 2 no longer has, and an actor option works only with its
# middleware. Listed here: what the project uses, nothing else.
from dramatiq.middleware import Retries, TimeLimit

DRAMATIQ_BROKER["MIDDLEWARE"] = [
    # Past TASK_TIME_LIMIT a task is interrupted (Dramatiq's: 10 min).
    TimeLimit(time_limit=TASK_TIME_LIMIT * 1000),
    # A task that raises is not run again unless its actor says how
    # often (max_retries, min_backoff, max_backoff: see the samples).
    # Dramatiq's default, 20 tries over days, would repeat a task that
    # is not safe to repeat; a task whose worker died is not a retry:
    # the broker gives its message to another worker.
    Retries(max_retries=0),
    # Each task's thread closes database connections that broke or
    # aged, before and after the task, as a request does.
    "django_dramatiq.middleware.DbConnectionsMiddleware",
    # Worker processes die with the worker's main process (and, on
    # Redis, look for the tasks of dead workers).
    "core.broker.WorkerProcesses",
    # Signs of life for the liveness probe (core/heartbeat.py).
    "core.broker.Heartbeat",
]
# The worker loads the tasks modules of the apps; not django-dramatiq's own,
# whose task prunes the records of a middleware the project does not use.
DRAMATIQ_IGNORED_MODULES = ["django_dramatiq.tasks"]
