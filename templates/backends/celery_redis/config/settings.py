{%- set backend = cookiecutter._backends[cookiecutter.task_backend] -%}
{%- set redis = backend.broker == "redis" -%}
# Celery: tasks are @shared_task functions, queued in {{ cookiecutter._brokers[backend.broker].label }}, run by
# `manage.py worker` (bin/worker) and scheduled by `manage.py scheduler`
# (bin/scheduler). The app is config/celery.py; every setting below is
# CELERY_ + the name of Celery's setting. Celery's defaults favour speed over
# safety: each one changed here says why.
import re

# Every task has a time limit: past it, the task is interrupted
# (SoftTimeLimitExceeded, raised in it) and its job ends failed; 5 s later a
# task that ignored that is killed with its pool process. A worker asked to
# stop waits for its running tasks; the process managers' stop grace
# ({{ backend.stop_grace_seconds }} s) is this plus 10 s.
TASK_TIME_LIMIT = int(os.environ.get("TASK_TIME_LIMIT") or {{ backend.stop_grace_seconds - 10 }})
CELERY_TASK_SOFT_TIME_LIMIT = TASK_TIME_LIMIT
CELERY_TASK_TIME_LIMIT = TASK_TIME_LIMIT + 5
# One queue, named after the database unless TASK_QUEUE says otherwise:
# projects and environments that share a broker do not take each other's
# tasks. (A name holds letters, digits and _ . - only: a SQLite path's
# slashes become _.)
TASK_QUEUE = os.environ.get("TASK_QUEUE") or re.sub(
    r"[^\w.-]", "_", str(DATABASES["default"]["NAME"])
)
CELERY_TASK_DEFAULT_QUEUE = TASK_QUEUE

# Nothing lost when a worker dies: a task is acknowledged once it is done,
# not when it starts (Celery's default), and a task whose pool process was
# killed (out of memory, SIGKILL) goes back to the queue.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# ... bounded: a task that kills its pool process every time ends failed
# after this many redeliveries (core/jobs.py), instead of looping.
TASK_MAX_REDELIVERIES = 3
# Each pool process reserves one task at a time (Celery's default: 4), so
# no task waits behind a long one while another process is idle.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A worker that loses the broker stops its running late-acknowledged tasks:
# the broker gives them to another worker, and they must not run twice in
# parallel (Celery 6's default).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# A worker started before its broker retries the connection (100 times,
# waiting longer each time) rather than exiting; set, not left to the
# default, so that Celery 5 warns of nothing.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
{%- if redis %}
# Redis has no acknowledgements: a task a worker took and did not
# acknowledge is put back in the queue once this many seconds old, by a
# live worker, which looks every 5 s. So a killed worker's task runs
# again after at most this, plus 5 s. It must be longer than the longest
# task (the hard time limit) and than the longest countdown: a task held
# for later longer than this would be given out again and again.
TASK_RECOVERY_SECONDS = int(os.environ.get("TASK_RECOVERY_SECONDS") or 300)
if TASK_RECOVERY_SECONDS <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        "TASK_RECOVERY_SECONDS must be longer than TASK_TIME_LIMIT + 5 s: "
        "a running task would be given to a second worker."
    )
# The longest countdown the project's tasks use (the mail retries' back-off),
# in seconds: half the above. Keep yours under it too.
TASK_MAX_DELAY = TASK_RECOVERY_SECONDS // 2
CELERY_BROKER_URL = os.environ.get("REDIS_URL") or "redis://localhost:6379/0"
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": TASK_RECOVERY_SECONDS,
    "unacked_restore_interval": 5,
    "unacked_restore_throttle": 1,
    # Every wait bounded: connecting, each command, and a dead peer found by
    # TCP keepalive and a ping every 30 s.
    "socket_connect_timeout": 5,
    "socket_timeout": 30,
    "socket_keepalive": True,
    "health_check_interval": 30,
}
{%- else %}
CELERY_BROKER_URL = os.environ.get("RABBITMQ_URL") or "amqp://localhost:5672/%2F"
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # An enqueue returns once RabbitMQ has the message (publisher confirms):
    # a message is never lost between the web and the broker.
    "confirm_publish": True,
}
# A dead peer is found by AMQP heartbeats (seconds); connecting is bounded.
CELERY_BROKER_HEARTBEAT = 30
CELERY_BROKER_CONNECTION_TIMEOUT = 10
# The longest countdown the project's tasks use (the mail retries' back-off),
# in seconds. A worker holds a task that waits for its time unacknowledged,
# and RabbitMQ's consumer_timeout (2 h here, README) must outlast it.
TASK_MAX_DELAY = 3600
{%- endif %}
# Tasks and their arguments are JSON (Celery's default, said): nothing read
# from the broker is unpickled.
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# No result backend: a task's outcome is on its job row (core.models.Job).
CELERY_TASK_IGNORE_RESULT = True
# The worker logs through LOGGING above, like every other process, and
# leaves print() alone.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_REDIRECT_STDOUTS = False
