"""The mail tasks on RQ: later attempts queued with back-off, a run cut
short repeated by RQ's Retry."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.db import transaction
from django.utils import timezone

from core.models import Status
from notifications import services, tasks
from notifications.models import Notification
from tests.backend import queued
from tests.conftest import make_client
from tests.queued import Queued

pytestmark = pytest.mark.django_db


def test_task_sends_and_queues_nothing_more(notification):
    tasks.send_notification(notification.pk)
    assert len(mail.outbox) == 3
    assert Notification.objects.get().status == Status.DONE
    assert queued(tasks.send_notification) == []


def make_due(scheduled):
    """Move the jobs scheduled for later to the queue, as RQ's scheduler does
    once their time comes."""
    queue = scheduled.get_queue()
    for job_id in scheduled.get_job_ids():
        scheduled.remove(job_id)
        queue.enqueue_job(queue.fetch_job(job_id))


def test_recipients_left_waiting_queue_a_later_attempt_with_back_off(
    run_queued_tasks, notification, smtp_server
):
    smtp_server.refuse["postdoc@example.org"] = "451 Try again later"
    tasks.enqueue_delivery(notification.pk)
    delays = []
    for attempt in (2, 3):
        before = timezone.now()
        run_queued_tasks()
        (retry,) = queued(tasks.send_notification)
        assert (retry.args, retry.kwargs) == ([notification.pk], {"attempt": attempt})
        delays.append(retry.run_after - before)
        make_due(tasks.get_queue(settings.RQ_QUEUE).scheduled_job_registry)
    assert timedelta(seconds=29) < delays[0] <= timedelta(seconds=31)
    assert timedelta(seconds=59) < delays[1] <= timedelta(seconds=61)


def test_every_attempt_keeps_the_retry_for_runs_cut_short(notification):
    tasks.queue_later(tasks.send_notification, 1, notification.pk)
    (job_id,) = tasks.get_queue(settings.RQ_QUEUE).scheduled_job_registry.get_job_ids()
    job = tasks.get_queue(settings.RQ_QUEUE).fetch_job(job_id)
    assert (job.retries_left, job.failure_ttl) == (2, settings.RQ_FAILURE_TTL)


def test_nothing_is_queued_before_the_transaction_commits(
    owner, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        transaction.atomic(),
    ):
        created = services.create_notification(
            owner=owner, subject="s", message="m", recipients=["a@example.org"]
        )
        tasks.enqueue_delivery(created.pk)
        assert queued(tasks.send_notification) == []
    assert len(callbacks) == 1
    assert queued(tasks.send_notification) == [Queued([created.pk], {}, None)]


MAIL = {"subject": "Reset", "body": "A link", "to": ["a@example.org"], "html": None}


def test_a_mail_that_failed_for_now_is_queued_again_later(smtp_server):
    smtp_server.refuse["a@example.org"] = "451 Try again later"
    tasks.send_email(**MAIL)
    (retry,) = queued(tasks.send_email)
    assert retry.kwargs == {**MAIL, "attempt": 2}


def test_a_mail_still_failing_at_the_last_attempt_is_dropped(smtp_server, caplog):
    smtp_server.refuse["a@example.org"] = "451 Try again later"
    tasks.send_email(**MAIL, attempt=settings.NOTIFICATION_MAX_ATTEMPTS)
    assert queued(tasks.send_email) == []
    assert "not sent after" in caplog.text


def test_a_mail_refused_for_good_is_dropped(smtp_server):
    smtp_server.refuse["a@example.org"] = "550 No such user"
    tasks.send_email(**MAIL)
    assert smtp_server.envelopes == []
    assert queued(tasks.send_email) == []


def test_a_mail_is_queued_once_the_transaction_commits(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        tasks.enqueue_email(**MAIL)
        assert queued(tasks.send_email) == []
    assert queued(tasks.send_email) == [Queued([], MAIL, None)]


def test_failed_jobs_are_shown_to_staff_only_who_can_queue_them_again(
    run_queued_tasks, notification, monkeypatch, django_user_model
):
    def broken(notification_id):
        raise RuntimeError("broken")

    monkeypatch.setattr(services, "deliver", broken)
    tasks.enqueue_delivery(notification.pk)
    run_queued_tasks()  # the run and its two retries all fail
    failed = tasks.get_queue(settings.RQ_QUEUE).failed_job_registry
    (job_id,) = failed.get_job_ids()
    page = "/admin/django_rq/dashboard/queues/0/failed/"

    staff = make_client(django_user_model.objects.create_superuser("admin"))
    response = staff.get(page)
    assert response.status_code == 200
    assert job_id in response.text
    for someone in (make_client(notification.owner), make_client()):
        response = someone.get(page, headers={"Accept": "text/html"})
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
    # Its JSON figures too: staff, or a bearer token only if RQ_API_TOKEN is set.
    assert make_client().get("/admin/django_rq/dashboard/stats.json").status_code == 401

    response = staff.post(f"/admin/django_rq/dashboard/queues/0/{job_id}/requeue/")
    assert response.status_code == 302
    assert failed.get_job_ids() == []
    assert queued(tasks.send_notification) == [Queued([notification.pk], {}, None)]
