# huey, through its Django integration (huey.contrib.djhuey), with its queue
# in a SQLite file: no broker to run. Web and worker must share that file, so
# they run on one machine (compose: a shared volume; systemd: the units'
# StateDirectory). Tasks are @db_task functions run by `manage.py worker`
# (huey's `run_huey`; see bin/worker for the consumer's options).
from huey.serializer import SignedSerializer

INSTALLED_APPS += ["huey.contrib.djhuey"]
HUEY = {
    "huey_class": "huey.SqliteHuey",
    # One queue per database, should two projects share the file.
    "name": str(DATABASES["default"]["NAME"]),
    # huey's default is DEBUG, which would run every task inside the web
    # request in development. Never: tasks always go through the queue.
    "immediate": False,
    # The job rows (core.models.Job) hold the status; huey keeps no results.
    "results": False,
    # huey's messages are pickles: signed with SECRET_KEY, a message that
    # anyone else wrote into the file is refused instead of unpickled.
    "serializer": SignedSerializer(secret=SECRET_KEY, salt="huey"),
    # In STATE_DIR (see Database above): compose.yaml gives it a volume
    # that web and worker share.
    "filename": str(STATE_DIR / "huey.sqlite3"),
    # Seconds a writer waits for the file's lock before the call fails.
    "timeout": 10,
}
# run_huey gives the "huey" logger a handler of its own unless it has one:
# give it ours, so each line is logged once, to stdout, like the rest.
LOGGING["loggers"]["huey"] = {"handlers": ["stdout"], "propagate": False}
# Every task has a time limit: past it, huey stops the task (TaskTimeout,
# enforced in process workers) and the job ends failed. The process
# managers' stop grace ({{ cookiecutter._backends[cookiecutter.task_backend].stop_grace_seconds }} s) is this plus 10 s.
TASK_TIME_LIMIT = int(os.environ.get("TASK_TIME_LIMIT") or {{ cookiecutter._backends[cookiecutter.task_backend].stop_grace_seconds - 10 }})
