# huey, through its Django integration (huey.contrib.djhuey): tasks are
# @db_task functions, queued in Redis, run by `manage.py worker` (huey's
# `run_huey`; see bin/worker for the consumer's options).
import redis
from huey.serializer import SignedSerializer

INSTALLED_APPS += ["huey.contrib.djhuey"]
HUEY = {
    "huey_class": "huey.RedisHuey",
    # One queue per database: projects and environments that share a Redis
    # server do not take each other's tasks.
    "name": str(DATABASES["default"]["NAME"]),
    # huey's default is DEBUG, which would run every task inside the web
    # request in development. Never: tasks always go through the queue.
    "immediate": False,
    # The job rows (core.models.Job) hold the status; huey keeps no results.
    "results": False,
    # huey's messages are pickles: signed with SECRET_KEY, a message that
    # anyone else wrote into Redis is refused instead of unpickled.
    "serializer": SignedSerializer(secret=SECRET_KEY, salt="huey"),
    # Every wait is bounded: connecting, each command (a blocking read waits
    # 1 s), and a dead peer found by TCP keepalive and a ping every 30 s.
    "connection_pool": redis.ConnectionPool.from_url(
        os.environ.get("REDIS_URL") or "redis://localhost:6379/0",
        socket_connect_timeout=5,
        socket_timeout=10,
        socket_keepalive=True,
        health_check_interval=30,
    ),
}
# run_huey gives the "huey" logger a handler of its own unless it has one:
# give it ours, so each line is logged once, to stdout, like the rest.
LOGGING["loggers"]["huey"] = {"handlers": ["stdout"], "propagate": False}
# Every task has a time limit: past it, huey stops the task (TaskTimeout,
# enforced in process workers) and the job ends failed. The process
# managers' stop grace ({{ cookiecutter._backends[cookiecutter.task_backend].stop_grace_seconds }} s) is this plus 10 s.
TASK_TIME_LIMIT = int(os.environ.get("TASK_TIME_LIMIT") or {{ cookiecutter._backends[cookiecutter.task_backend].stop_grace_seconds - 10 }})
