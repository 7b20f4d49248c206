"""The worker command on Celery, as real processes: the task of a worker
killed with SIGKILL runs again on another worker, within the time the README
states ("Nothing lost when a worker dies"); a task whose pool process dies
every time it runs ends failed after TASK_MAX_REDELIVERIES."""

import os
import signal
import time
from pathlib import Path

import pytest
from django.conf import settings

from core.models import Status
from notifications import services, tasks
from notifications.models import Notification
from tests.test_worker import start_worker, wait_until_ready

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Short limits for these workers: Redis gives a dead worker's task out again
# once it is TASK_RECOVERY_SECONDS old, which must outlast the hard time
# limit (TASK_TIME_LIMIT + 5 s).
LIMITS = {"TASK_TIME_LIMIT": "10", "TASK_RECOVERY_SECONDS": "20"}
# Redis: that age, plus its 5-s look; RabbitMQ: as the connection closes;
# then 10 s for a loaded machine.
BOUND = (20 + 5 if hasattr(settings, "TASK_RECOVERY_SECONDS") else 0) + 10


@pytest.fixture
def env(smtp_server, media_root, worker_env):
    return {
        **worker_env,
        **LIMITS,
        "MEDIA_ROOT": str(media_root),
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_server.port),
        "EMAIL_USE_TLS": "false",
    }


@pytest.fixture
def workers():
    started = []
    yield started
    for worker in started:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def queue_notification(owner):
    notification = services.create_notification(
        owner=owner, subject="s", message="m", recipients=["pi@example.org"]
    )
    tasks.enqueue_delivery(notification.pk)


def wait_for(condition, seconds, log):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


def test_the_task_of_a_killed_worker_runs_again_within_the_bound(
    owner, smtp_server, env, workers, tmp_path
):
    first = start_worker(tmp_path / "first.log", **env)
    workers.append(first)
    wait_until_ready(first)
    smtp_server.delay = 60  # it is sending when it dies
    queue_notification(owner)
    wait_for(lambda: smtp_server.receiving, 30, first.log)
    second = start_worker(tmp_path / "second.log", **env)
    workers.append(second)
    wait_until_ready(second)
    smtp_server.delay = 0
    os.killpg(first.pid, signal.SIGKILL)  # the worker and its processes
    first.wait()
    killed = time.monotonic()

    while Notification.objects.get().status != Status.DONE:
        assert time.monotonic() - killed < BOUND, second.log.read_text()
        time.sleep(0.1)


def pool_processes(worker):
    """The pids of the worker's pool processes (its children)."""
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children")
    return [int(pid) for pid in children.read_text().split()]


def test_a_task_that_kills_its_pool_process_every_time_ends_failed(
    owner, smtp_server, env, workers, tmp_path
):
    worker = start_worker(tmp_path / "worker.log", **env)
    workers.append(worker)
    wait_until_ready(worker)
    smtp_server.delay = 60  # each run is sending when its process dies
    queue_notification(owner)
    runs = 0
    while Notification.objects.get().status != Status.FAILED:
        wait_for(
            lambda runs=runs: (
                smtp_server.receiving > runs
                or Notification.objects.get().status == Status.FAILED
            ),
            30,
            worker.log,
        )
        if smtp_server.receiving > runs:
            runs += 1
            for pid in pool_processes(worker):
                os.kill(pid, signal.SIGKILL)
    notification = Notification.objects.get()
    assert notification.error == "The task stopped its worker every time it ran."
    # The first delivery, then as many again as allowed.
    assert runs == settings.TASK_MAX_REDELIVERIES + 1
    assert worker.poll() is None  # the worker itself goes on
