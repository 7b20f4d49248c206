"""The worker command on django-tasks-db, as real processes: an enqueue wakes
an idle worker (PostgreSQL's NOTIFY), and the slow poll makes up a missed
notification; a killed worker's task runs again once its lease lapses; a
worker whose claim was taken over while it was paused writes nothing over
the newer run (a photo, a notification); a worker cut off from the
database mid-task queues the task again instead of failing it."""

import os
import signal
import time
from collections import Counter

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult

from core.models import Status
from notifications import services, tasks
from notifications.models import Notification
from photos import tasks as photo_tasks
from photos.models import Photo
from tests import images
from tests.relay import Relay
from tests.test_worker import (
    database_url,
    start_ready,
    start_worker,
    wait_for,
    wait_for_log,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="LISTEN/NOTIFY and the database relay are PostgreSQL's",
)
# SQLite has one writer: a worker paused inside a transaction keeps every
# other from writing until it is resumed (development only).
many_writers = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite has one writer at a time",
)

# A 3-s lease, renewed and looked at every second: a lost worker's task is
# queued again 4 s after its last renewal; then 10 s for a loaded machine.
LEASE = 3
BOUND = LEASE + LEASE / 3 + 10
TAKEN_OVER = "another run took it over"


@pytest.fixture
def env(smtp_server, media_root, worker_env):
    return {
        **worker_env,
        "TASK_LEASE_SECONDS": str(LEASE),
        "MEDIA_ROOT": str(media_root),
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_server.port),
        "EMAIL_USE_TLS": "false",
    }


def outcome(task, log):
    """The queue's row of ``task``'s run, once its worker wrote the outcome
    (just after the job row's; the schedules' rows are left out)."""
    rows = DBTaskResult.objects.filter(task_path=task.module_path)
    wait_for(lambda: not rows.filter(status__in=["READY", "RUNNING"]), 30, log)
    return rows.get()


def notification(owner, recipients=("pi@example.org",)):
    return services.create_notification(
        owner=owner, subject="s", message="m", recipients=list(recipients)
    )


def status(notification):
    return Notification.objects.get(pk=notification.pk).status


def idle(worker, owner):
    """Wait until ``worker`` has run a task and found the queue empty."""
    first = notification(owner)
    tasks.enqueue_delivery(first.pk)
    wait_for(lambda: status(first) == Status.DONE, 30, worker.log)
    time.sleep(1)  # it looked at the queue again, found nothing: it waits


def test_two_workers_drain_a_queue_running_each_task_once(
    owner, smtp_server, env, workers, tmp_path
):
    """Each outcome is written with the worker's next claim (core/queue.py):
    no task is claimed twice, none is left behind."""
    one = start_ready(workers, tmp_path / "one.log", **env)
    start_ready(workers, tmp_path / "two.log", **env)
    recipients = [f"r{n}@example.org" for n in range(30)]
    queued = [notification(owner, [email]) for email in recipients]
    for each in queued:
        tasks.enqueue_delivery(each.pk)

    runs = DBTaskResult.objects.filter(task_path=tasks.send_notification.module_path)
    wait_for(lambda: runs.filter(status="SUCCESSFUL").count() == 30, 60, one.log)
    assert sorted(smtp_server.recipients) == sorted(recipients)
    assert {status(each) for each in queued} == {Status.DONE}
    assert {len(ids) for ids in runs.values_list("worker_ids", flat=True)} == {1}


@postgresql
def test_a_task_queued_while_the_worker_waits_starts_without_a_poll(
    owner, env, workers, tmp_path
):
    # No poll within the test: only the enqueue's NOTIFY can wake it.
    worker = start_ready(
        workers, tmp_path / "worker.log", ["--interval", "3600"], **env
    )
    idle(worker, owner)

    second = notification(owner)
    tasks.enqueue_delivery(second.pk)

    wait_for(lambda: status(second) == Status.DONE, 30, worker.log)


@postgresql
def test_a_worker_listens_before_it_says_it_started(env, workers, tmp_path):
    """A task queued between its first look at the queue and its LISTEN
    would notify nobody, and wait for the poll."""
    start_ready(workers, tmp_path / "worker.log", ["--interval", "3600"], **env)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN %'"
        )
        assert cursor.fetchone() == (1,)


def test_a_task_queued_without_a_notification_is_found_by_the_poll(
    owner, env, workers, tmp_path
):
    worker = start_ready(workers, tmp_path / "worker.log", ["--interval", "1"], **env)
    idle(worker, owner)

    missed = notification(owner)
    # The library's own enqueue: a row, and no NOTIFY.
    task = tasks.send_notification
    DatabaseBackend.enqueue(task.get_backend(), task, [missed.pk], {})

    wait_for(lambda: status(missed) == Status.DONE, 30, worker.log)


def test_the_task_of_a_killed_worker_runs_again_once_its_lease_lapses(
    owner, smtp_server, env, workers, tmp_path
):
    # Both wait first: on SQLite the sending worker holds the write lock,
    # and a worker started then would not be ready before the kill.
    for name in ("one", "two"):
        start_ready(workers, tmp_path / f"{name}.log", ["--worker-id", name], **env)
    smtp_server.delay = 60  # it is sending when it dies
    killed_one = notification(owner)
    tasks.enqueue_delivery(killed_one.pk)
    wait_for(lambda: smtp_server.receiving, 30, workers[0].log)
    running = DBTaskResult.objects.get(task_path=tasks.send_notification.module_path)
    holder = running.worker_ids[-1]
    (dying, other), names = (workers, ["one", "two"])
    if holder == "two":
        (dying, other), names = (workers[::-1], ["two", "one"])
    smtp_server.delay = 0
    os.killpg(dying.pid, signal.SIGKILL)
    dying.wait()

    wait_for(lambda: status(killed_one) == Status.DONE, BOUND, other.log)
    result = outcome(tasks.send_notification, other.log)
    assert (result.status, result.worker_ids) == ("SUCCESSFUL", names)


def test_a_worker_whose_claim_was_taken_over_writes_nothing_over_the_new_run(
    owner, env, workers, tmp_path
):
    """Paused (SIGSTOP) past its lease and its time limit, then resumed: its
    task is stopped at once (SIGALRM) and would record the photo failed,
    over the thumbnail the other worker made meanwhile."""
    photo = Photo.objects.create(
        owner=owner,
        # Seconds of decoding: it is decoding when it is paused.
        image=ContentFile(images.many_scan_jpeg(scans=30_000), name="slow.jpg"),
    )
    paused = start_ready(
        workers,
        tmp_path / "paused.log",
        **env,
        TASK_TIME_LIMIT="2",
        PHOTO_DECODE_SECONDS="60",
    )
    photo_tasks.enqueue_thumbnail(photo.pk)
    running = Status.RUNNING
    wait_for(lambda: Photo.objects.get().status == running, 30, paused.log)
    os.killpg(paused.pid, signal.SIGSTOP)  # the worker and its decoder
    other = start_worker(tmp_path / "other.log", **env, PHOTO_DECODE_SECONDS="60")
    workers.append(other)

    done = Status.DONE
    wait_for(lambda: Photo.objects.get().status == done, 120, other.log)
    os.killpg(paused.pid, signal.SIGCONT)

    # Its task was stopped, tried to record the photo failed, and could not.
    wait_for_log(paused, TAKEN_OVER)
    assert "(fail ClaimLost(" in paused.log.read_text()
    photo = Photo.objects.get()
    assert (photo.status, photo.error) == (Status.DONE, "")
    assert photo.thumbnail.storage.exists(photo.thumbnail.name)
    result = outcome(photo_tasks.make_thumbnail, other.log)
    assert (result.status, len(result.worker_ids)) == ("SUCCESSFUL", 2)
    assert paused.poll() is None  # and it goes on serving


@many_writers
def test_a_paused_worker_whose_notification_was_taken_over_leaves_it_right(
    owner, smtp_server, env, workers, tmp_path
):
    """Paused while it sends to the first recipient (its delivery row locked),
    resumed after another worker sent to the others: it records the message
    it sent, and not the notification's outcome, which is left to the other
    worker's retry. Every recipient gets the message once."""
    paused = start_ready(workers, tmp_path / "paused.log", **env)
    smtp_server.delay = 3  # the first answer comes while it is paused
    recipients = [f"r{n}@example.org" for n in range(4)]
    taken_over = notification(owner, recipients)
    tasks.enqueue_delivery(taken_over.pk)
    wait_for(lambda: smtp_server.receiving, 30, paused.log)
    os.killpg(paused.pid, signal.SIGSTOP)
    smtp_server.delay = 0
    other = start_worker(tmp_path / "other.log", **env)
    workers.append(other)
    # The other worker's run ends (the first recipient is still locked by
    # the paused run: it queues a retry), then the paused one resumes.
    runs = DBTaskResult.objects.filter(task_path=tasks.send_notification.module_path)
    wait_for(lambda: runs.filter(status="SUCCESSFUL").exists(), 30, other.log)
    os.killpg(paused.pid, signal.SIGCONT)

    wait_for_log(paused, TAKEN_OVER)
    # Each recipient sent once, recorded once; the notification not ended by
    # the paused run: its end is the other worker's retry's (30 s later),
    # which finds every recipient sent.
    assert sorted(smtp_server.recipients) == recipients
    assert set(taken_over.deliveries.values_list("state", flat=True)) == {"sent"}
    assert (status(taken_over), Notification.objects.get().error) == (
        Status.RUNNING,
        "",
    )
    assert runs.filter(status="READY").count() == 1  # the retry


@postgresql
def test_a_task_cut_off_from_the_database_is_queued_again_not_failed(
    owner, smtp_server, env, workers, tmp_path
):
    relay = Relay(database_url())
    worker = start_ready(
        workers,
        tmp_path / "worker.log",
        **{**env, "DATABASE_URL": relay.url, "TASK_RETRY_DELAY": "1"},
    )
    smtp_server.delay = 1
    recipients = [f"r{n}@example.org" for n in range(6)]
    cut_one = notification(owner, recipients)
    tasks.enqueue_delivery(cut_one.pk)
    wait_for(lambda: smtp_server.receiving >= 2, 30, worker.log)
    relay.cut()
    time.sleep(5)
    relay.restore()

    wait_for(lambda: status(cut_one) == Status.DONE, 60, worker.log)
    sent = Counter(smtp_server.recipients)
    assert set(sent) == set(recipients)
    # At most the message in flight at the cut went twice (the server took
    # it, its row was not written): email is at-least-once.
    assert sum(sent.values()) - len(recipients) <= 1, sent
    assert "lost the database" in worker.log.read_text()
    result = outcome(tasks.send_notification, worker.log)
    assert (result.status, result.worker_ids) == (
        "SUCCESSFUL",
        [result.worker_ids[0]] * 2,
    )
