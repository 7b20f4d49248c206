"""The mail tasks, retried by the task queue itself: a delivery that leaves
recipients waiting is queued again with back-off, as many times as allowed."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.db import OperationalError
from django.utils import timezone

from core.models import Status
from notifications import services, tasks
from notifications.models import Notification
from tests.backend import make_due, queued

pytestmark = pytest.mark.django_db


def test_task_sends_and_queues_nothing_more(notification):
    tasks.send_notification(notification.pk)
    assert len(mail.outbox) == 3
    assert Notification.objects.get().status == Status.DONE
    assert queued(tasks.send_notification) == []


def test_recipients_left_waiting_are_retried_with_back_off(
    run_queued_tasks, notification, smtp_server
):
    smtp_server.refuse["postdoc@example.org"] = "451 Try again later"
    tasks.enqueue_delivery(notification.pk)
    delays = []
    for _ in range(2):
        before = timezone.now()
        run_queued_tasks()
        (retry,) = queued(tasks.send_notification)
        assert (retry.args, retry.kwargs) == ([notification.pk], {})
        delays.append(retry.run_after - before)
        make_due()
    # 15 s, then 30 s, each with jitter up to twice.
    assert timedelta(seconds=14) < delays[0] <= timedelta(seconds=31)
    assert timedelta(seconds=29) < delays[1] <= timedelta(seconds=61)
    assert Notification.objects.get().status == Status.RUNNING


def test_a_delivery_is_run_at_most_the_attempts_allowed(
    run_queued_tasks, notification, smtp_server
):
    smtp_server.refuse["postdoc@example.org"] = "451 Try again later"
    tasks.enqueue_delivery(notification.pk)
    for _ in range(settings.NOTIFICATION_MAX_ATTEMPTS):
        run_queued_tasks()
        make_due()
    # The last attempt gave up on the one recipient still refused.
    assert queued(tasks.send_notification) == []
    assert Notification.objects.get().status == Status.FAILED
    assert "postdoc@example.org" not in smtp_server.recipients


def test_a_refused_password_reset_mail_is_retried_later(run_queued_tasks, smtp_server):
    smtp_server.refuse["carol@example.org"] = "451 Try again later"
    tasks.enqueue_email(subject="s", body="b", to=["carol@example.org"])
    run_queued_tasks()
    (retry,) = queued(tasks.send_email)
    assert retry.kwargs["to"] == ["carol@example.org"]
    assert retry.run_after > timezone.now() + timedelta(seconds=14)


def test_a_delivery_that_lost_the_database_is_retried_not_failed(
    run_queued_tasks, notification, monkeypatch
):
    def deliver(notification_id):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "deliver", deliver)
    tasks.enqueue_delivery(notification.pk)
    before = timezone.now()
    run_queued_tasks()
    (retry,) = queued(tasks.send_notification)
    assert retry.args == [notification.pk]
    assert before < retry.run_after <= before + timedelta(seconds=31)
    assert Notification.objects.get().status == Status.PENDING
