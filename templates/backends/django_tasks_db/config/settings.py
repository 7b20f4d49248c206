# Django's own task API; django-tasks-db stores the queue in the database, so
# no broker is needed. Workers: `manage.py worker` (see bin/worker). The
# backend is django-tasks-db's, plus a NOTIFY that wakes an idle worker on
# PostgreSQL (core/queue.py).
INSTALLED_APPS += ["django_tasks_db", "django_periodic_tasks"]
TASKS = {
    "default": {
        "BACKEND": "core.queue.Backend",
    },
}

# Every task has a time limit: past it, the worker stops the task and records
# it failed (core/management/commands/worker.py). The process managers' stop
# grace ({{ cookiecutter._backends[cookiecutter.task_backend].stop_grace_seconds }} s) is this plus 10 s: a graceful stop lets any task end.
TASK_TIME_LIMIT = int(os.environ.get("TASK_TIME_LIMIT") or {{ cookiecutter._backends[cookiecutter.task_backend].stop_grace_seconds - 10 }})
# A live worker renews its lease every third of TASK_LEASE_SECONDS; a task
# whose worker stopped renewing (killed, out of memory, cut off, paused) is
# queued again by the next look of any worker (every third, too): at most
# 20 s from the kill to the re-run. A task that lost TASK_MAX_WORKERS_LOST
# workers is recorded failed: it may be what kills them.
TASK_LEASE_SECONDS = float(os.environ.get("TASK_LEASE_SECONDS") or 15)
TASK_MAX_WORKERS_LOST = 3
# A task that lost its database connection is queued again after
# TASK_RETRY_DELAY seconds, twice as long each next time (at most 5 min):
# about 20 min of outage in TASK_DB_RETRIES runs. Then it is recorded
# failed: an error that every run meets (a statement that always times
# out) is the task's own.
TASK_RETRY_DELAY = float(os.environ.get("TASK_RETRY_DELAY") or 10)
TASK_DB_RETRIES = 8

# Schedules (core/tasks.py) run from the workers: each looks for a due
# schedule every SCHEDULER_INTERVAL seconds, so a tick is late by at most
# that. django-periodic-tasks also takes a sixth crontab field, seconds.
PERIODIC_TASKS_SCHEDULER_INTERVAL = int(os.environ.get("SCHEDULER_INTERVAL") or 15)
