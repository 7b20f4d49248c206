"""The worker command on Dramatiq, as real processes: the task of a worker
killed with SIGKILL runs again on another worker, within the time the
README states ("Nothing lost when a worker dies")."""

import time

import pytest
from django.conf import settings

from core.models import Status
from notifications import services, tasks
from notifications.models import Notification
from tests.test_worker import kill_while_paused, start_ready, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Redis puts the dead worker's task back once its heartbeat is
# TASK_RECOVERY_SECONDS old, RabbitMQ as its connection closes; then 20 s
# for a loaded machine (CI runs these beside other suites).
BOUND = getattr(settings, "TASK_RECOVERY_SECONDS", 0) + 20


def test_the_task_of_a_killed_worker_runs_again_within_the_bound(
    owner, smtp_server, media_root, worker_env, workers, tmp_path
):
    env = {
        **worker_env,
        "MEDIA_ROOT": str(media_root),
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_server.port),
        "EMAIL_USE_TLS": "false",
    }
    first = start_ready(workers, tmp_path / "first.log", **env)
    smtp_server.delay = 60  # it is sending when it dies
    notification = services.create_notification(
        owner=owner, subject="s", message="m", recipients=["pi@example.org"]
    )
    tasks.enqueue_delivery(notification.pk)
    wait_for(lambda: smtp_server.receiving, 30, first.log)
    second = start_ready(workers, tmp_path / "second.log", **env)
    smtp_server.delay = 0
    killed = kill_while_paused(first, second)

    while Notification.objects.get().status != Status.DONE:
        assert time.monotonic() - killed < BOUND, second.log.read_text()
        time.sleep(0.1)
