# Django's own task API; django-tasks-db stores the queue in the database, so
# no broker is needed. Workers: `manage.py db_worker` (see bin/worker).
INSTALLED_APPS += ["django_tasks_db"]
TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
    },
}
