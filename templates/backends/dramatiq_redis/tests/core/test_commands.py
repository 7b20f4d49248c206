"""The worker command on Dramatiq, as real processes: the task of a worker
killed with SIGKILL runs again on another worker, within the time the
README states ("Nothing lost when a worker dies")."""

import os
import signal
import time

import pytest
from django.conf import settings

from core.models import Status
from notifications import services, tasks
from notifications.models import Notification
from tests.test_worker import start_worker, wait_until_ready

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Redis puts the dead worker's task back once its heartbeat is
# TASK_RECOVERY_SECONDS old, RabbitMQ as its connection closes; then 10 s
# for a loaded machine.
BOUND = getattr(settings, "TASK_RECOVERY_SECONDS", 0) + 10


def test_the_task_of_a_killed_worker_runs_again_within_the_bound(
    owner, smtp_server, media_root, worker_env, tmp_path
):
    env = {
        **worker_env,
        "MEDIA_ROOT": str(media_root),
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_server.port),
        "EMAIL_USE_TLS": "false",
    }
    first = start_worker(tmp_path / "first.log", **env)
    workers = [first]
    try:
        wait_until_ready(first)
        smtp_server.delay = 60  # it is sending when it dies
        notification = services.create_notification(
            owner=owner, subject="s", message="m", recipients=["pi@example.org"]
        )
        tasks.enqueue_delivery(notification.pk)
        deadline = time.monotonic() + 30
        while not smtp_server.receiving:
            assert time.monotonic() < deadline, first.log.read_text()
            time.sleep(0.05)
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
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
