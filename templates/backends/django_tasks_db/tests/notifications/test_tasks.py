"""The notification task on django.tasks: retries are tasks queued for later."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from notifications import tasks
from tests.backend import queued

pytestmark = pytest.mark.django_db


def test_task_sends_and_queues_nothing_more(notification):
    tasks.send_notification.call(notification.pk)
    assert len(mail.outbox) == 3
    assert queued(tasks.send_notification) == []


def test_transient_failure_queues_a_later_retry(notification, smtp_server):
    smtp_server.refuse["postdoc@example.org"] = "451 Try again later"
    before = timezone.now()

    tasks.send_notification.call(notification.pk, 3)

    (retry,) = queued(tasks.send_notification)
    assert (retry.args, retry.kwargs) == ([notification.pk, 4], {})
    # Third attempt failed: 30 s doubled twice.
    assert retry.run_after >= before + timedelta(minutes=2)
    assert retry.run_after <= timezone.now() + timedelta(minutes=2)


def test_retry_delay_is_capped(notification, smtp_server):
    smtp_server.refuse["postdoc@example.org"] = "451 Try again later"
    tasks.send_notification.call(notification.pk, 20)
    (retry,) = queued(tasks.send_notification)
    assert retry.run_after <= timezone.now() + tasks.MAX_RETRY_DELAY
