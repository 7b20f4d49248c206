# RQ through django-rq: tasks are @job functions, queued in Redis, run by
# `manage.py worker` (bin/worker) and scheduled by `manage.py scheduler`
# (bin/scheduler).
INSTALLED_APPS += ["django_rq"]

# Every task has a time limit: past it, RQ stops the task (SIGALRM in the
# worker) and the job ends failed. The process managers' stop grace
# ({{ cookiecutter._backends[cookiecutter.task_backend].stop_grace_seconds }} s) is this plus 10 s: a graceful stop lets any task end.
TASK_TIME_LIMIT = int(os.environ.get("TASK_TIME_LIMIT") or {{ cookiecutter._backends[cookiecutter.task_backend].stop_grace_seconds - 10 }})
# A job whose worker died (SIGKILL, out of memory) is found once the time
# limit plus TASK_RECOVERY_MARGIN has passed since it started, by the next
# worker's maintenance, every TASK_RECOVERY_INTERVAL seconds: it runs again
# (core/management/commands/worker.py).
TASK_RECOVERY_MARGIN = int(os.environ.get("TASK_RECOVERY_MARGIN") or 30)
TASK_RECOVERY_INTERVAL = int(os.environ.get("TASK_RECOVERY_INTERVAL") or 15)


{% include "brokers/redis/bounded_url.py" %}


# One queue, named after the database unless RQ_QUEUE says otherwise:
# projects and environments that share a Redis server do not take each
# other's jobs.
RQ_QUEUE = os.environ.get("RQ_QUEUE") or str(DATABASES["default"]["NAME"])
RQ_QUEUES = {
    RQ_QUEUE: {
        "URL": _bounded(os.environ.get("REDIS_URL") or "redis://localhost:6379/0"),
        "DEFAULT_TIMEOUT": TASK_TIME_LIMIT,
        # Jobs are JSON: nothing read from Redis is unpickled.
        "SERIALIZER": "rq.serializers.JSONSerializer",
    },
}
RQ = {
    # Queue a job once the transaction it is queued in commits: Redis is not
    # the database, so a worker never looks for a row not committed yet.
    "COMMIT_MODE": "on_db_commit",
}
# Failed jobs stay in RQ's failed registry (the admin's Django RQ pages), to
# be seen and re-queued, as long as the clean-up keeps other records. The
# results of finished jobs go after RQ's 500 s: the job rows
# (core.models.Job) hold the status.
RQ_FAILURE_TTL = CLEANUP_RETENTION_DAYS * 24 * 3600
