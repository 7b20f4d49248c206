"""The notification task on huey: retries are huey's, with back-off."""

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
from tests.queued import Queued

pytestmark = pytest.mark.django_db


def test_task_sends_and_raises_nothing(notification):
    tasks.send_notification.call_local(notification.pk)
    assert len(mail.outbox) == 3
    assert Notification.objects.get().status == Status.DONE


def test_recipients_left_waiting_make_the_task_retry(notification, smtp_server):
    smtp_server.refuse["postdoc@example.org"] = "451 Try again later"
    with pytest.raises(tasks.DeliveryPending):
        tasks.send_notification.call_local(notification.pk)


def test_a_retry_is_scheduled_with_back_off(
    run_queued_tasks, notification, smtp_server
):
    smtp_server.refuse["postdoc@example.org"] = "451 Try again later"
    tasks.send_notification(notification.pk)
    delays = []
    for _ in range(2):
        before = timezone.now()
        run_queued_tasks()
        (retry,) = queued(tasks.send_notification)
        assert (retry.args, retry.kwargs) == ([notification.pk], {})
        delays.append(retry.run_after - before)
        # Make it due now, as the scheduler would once the delay is over.
        (message,) = tasks.send_notification.huey.scheduled()
        tasks.send_notification.huey.storage.flush_schedule()
        message.eta = None
        tasks.send_notification.huey.enqueue(message)
    assert timedelta(seconds=29) < delays[0] <= timedelta(seconds=31)
    assert timedelta(seconds=59) < delays[1] <= timedelta(seconds=61)


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


def test_a_mail_that_failed_for_now_makes_its_task_retry(smtp_server):
    smtp_server.refuse["a@example.org"] = "451 Try again later"
    with pytest.raises(tasks.DeliveryPending):
        tasks.send_email.call_local(**MAIL)
    assert tasks.send_email.retries == settings.NOTIFICATION_MAX_ATTEMPTS - 1


def test_a_mail_refused_for_good_is_dropped(smtp_server):
    smtp_server.refuse["a@example.org"] = "550 No such user"
    tasks.send_email.call_local(**MAIL)
    assert smtp_server.envelopes == []


def test_a_mail_is_queued_once_the_transaction_commits(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        tasks.enqueue_email(**MAIL)
        assert queued(tasks.send_email) == []
    assert queued(tasks.send_email) == [Queued([], MAIL, None)]
