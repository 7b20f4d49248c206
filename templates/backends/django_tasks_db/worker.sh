#!/bin/sh
# The worker: django-tasks-db's db_worker, one task at a time per process
# (run more processes to do more at once).
#   --no-reload      its default is settings.DEBUG; reloading can cut a
#                    running task short. Pass --reload for development.
#   --interval 0.2   seconds to sleep only when the queue is empty.
# On SIGTERM it finishes the running task, then exits; the process managers
# wait up to {{ cookiecutter._backends[cookiecutter.task_backend].stop_grace_seconds }} s for that (compose, supervisord, systemd).
set -eu
cd "$(dirname "$0")/.."
exec python manage.py db_worker --no-reload --interval 0.2 "$@"
