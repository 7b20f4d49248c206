"""The queue table's side of the worker (core/queue.py): claims, outcomes,
and the claims that no live run holds."""

import asyncio
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from core import queue, tasks

pytestmark = pytest.mark.django_db(transaction=True)

ALL = DBTaskResult.objects.all()


def claimed(worker_id):
    result = queue.claim(ALL, worker_id)
    assert result is not None
    return result


def test_a_claim_takes_the_oldest_ready_task_once():
    first, second = tasks.clean_up.enqueue(), tasks.clean_up.enqueue()
    assert [str(claimed("w1").pk), str(claimed("w2").pk)] == [first.id, second.id]
    assert queue.claim(ALL, "w3") is None
    assert ALL.get(pk=first.id).worker_ids == ["w1"]


def test_an_outcome_and_the_next_claim_are_written_together():
    tasks.clean_up.enqueue()
    second = tasks.clean_up.enqueue()
    result = claimed("w1")
    with CaptureQueriesContext(connection) as queries:
        written, following = queue.succeed(result, 3, then=(ALL, "w1"))
    assert written
    if queue.listens():  # PostgreSQL: one statement, so one commit
        assert len(queries) == 1
    else:  # SQLite: the worker claims on its own
        assert following is None
        following = claimed("w1")
    assert ALL.get(pk=result.pk).status == "SUCCESSFUL"
    assert ALL.get(pk=result.pk).return_value == 3
    assert (str(following.pk), following.status) == (second.id, "RUNNING")


def test_the_outcome_of_a_run_taken_over_is_not_written():
    tasks.clean_up.enqueue()
    result = claimed("w1")
    ALL.filter(pk=result.pk).update(worker_ids=["w1", "w2"])  # w2 took it over
    written, following = queue.fail(result, RuntimeError("stale"), then=(ALL, "w1"))
    assert (written, following) == (False, None)
    row = ALL.get(pk=result.pk)
    assert (row.status, row.worker_ids, row.traceback) == ("RUNNING", ["w1", "w2"], "")


def test_a_task_of_a_worker_without_a_lease_is_queued_again():
    tasks.clean_up.enqueue()
    result = claimed("gone")  # never renewed a lease: killed at once
    queue.renew_lease("alive")
    assert queue.requeue_lost("alive", running=None) == 1
    assert ALL.get(pk=result.pk).status == "READY"


def test_a_claim_its_live_worker_does_not_run_is_queued_again(settings):
    """The answer to a claim lost with the connection: the row says RUNNING,
    claimed by a worker that is alive but runs something else."""
    for _ in range(3):
        tasks.clean_up.enqueue()
    queue.renew_lease("w1")
    running, orphan, fresh = claimed("w1"), claimed("w1"), claimed("w1")
    long_ago = timezone.now() - timedelta(seconds=settings.TASK_LEASE_SECONDS + 1)
    ALL.filter(pk__in=[running.pk, orphan.pk]).update(started_at=long_ago)

    # The running task is the worker's; the fresh claim's run is about to start.
    assert queue.requeue_lost("w1", running=running.pk) == 1
    assert ALL.get(pk=orphan.pk).status == "READY"
    assert set(ALL.filter(status="RUNNING").values_list("pk", flat=True)) == {
        running.pk,
        fresh.pk,
    }


def test_a_run_that_lost_the_database_is_queued_again_later_then_failed(settings):
    settings.TASK_RETRY_DELAY, settings.TASK_DB_RETRIES = 10, 2
    tasks.clean_up.enqueue()
    delays = []
    for _ in range(settings.TASK_DB_RETRIES):
        result = claimed("w1")
        before = timezone.now()
        assert queue.retry_later(result, OperationalError("gone")) == (True, None)
        row = ALL.get(pk=result.pk)
        assert row.status == "READY"
        delays.append(round((row.run_after - before).total_seconds()))
        ALL.filter(pk=result.pk).update(run_after=before)  # due now

    result = claimed("w1")
    queue.retry_later(result, OperationalError("gone"))
    row = ALL.get(pk=result.pk)
    assert delays == [10, 20]
    assert (row.status, row.exception_class_path) == (
        "FAILED",
        "django.db.utils.OperationalError",
    )


def test_an_async_enqueue_queues_the_task_too():
    result = asyncio.run(tasks.clean_up.aenqueue())
    assert ALL.get(pk=result.id).status == "READY"
