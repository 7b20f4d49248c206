# Django's own task API; django-tasks-db stores the queue in the database, so
# no broker is needed. Workers: `manage.py db_worker` (see bin/worker).
INSTALLED_APPS += ["django_tasks_db", "django_periodic_tasks"]
TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
    },
}

# Every task has a time limit: past it, the worker stops the task and records
# it failed (core/management/commands/worker.py). The process managers' stop
# grace ({{ cookiecutter._backends[cookiecutter.task_backend].stop_grace_seconds }} s) is this plus 10 s: a graceful stop lets any task end.
TASK_TIME_LIMIT = int(os.environ.get("TASK_TIME_LIMIT") or {{ cookiecutter._backends[cookiecutter.task_backend].stop_grace_seconds - 10 }})
# A task RUNNING for longer than the limit plus this margin has lost its
# worker (killed, out of memory): every TASK_RECOVERY_INTERVAL seconds the
# workers queue such tasks again, or fail them once TASK_MAX_CLAIMS workers
# died running them.
TASK_RECOVERY_MARGIN = int(os.environ.get("TASK_RECOVERY_MARGIN") or 30)
TASK_RECOVERY_INTERVAL = float(os.environ.get("TASK_RECOVERY_INTERVAL") or 15)
TASK_MAX_CLAIMS = 3

# Schedules (core/tasks.py) run from the workers: each looks for a due
# schedule every SCHEDULER_INTERVAL seconds, so a tick is late by at most
# that. django-periodic-tasks also takes a sixth crontab field, seconds.
PERIODIC_TASKS_SCHEDULER_INTERVAL = int(os.environ.get("SCHEDULER_INTERVAL") or 15)
