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


MAIL = {"subject": "Reset", "body": "A link", "to": ["a@example.org"], "html": None}


def test_a_mail_that_failed_for_now_is_queued_again(smtp_server):
    smtp_server.refuse["a@example.org"] = "451 Try again later"
    tasks.send_email.call(**MAIL)
    (retry,) = queued(tasks.send_email)
    assert retry.kwargs == {**MAIL, "attempt": 2}
    assert retry.run_after > timezone.now() + timedelta(seconds=25)


def test_a_mail_that_failed_every_attempt_fails_its_task(smtp_server, settings):
    smtp_server.refuse["a@example.org"] = "451 Try again later"
    with pytest.raises(tasks.NotSent):
        tasks.send_email.call(**MAIL, attempt=settings.NOTIFICATION_MAX_ATTEMPTS)
    assert queued(tasks.send_email) == []


def test_a_mail_refused_for_good_is_dropped(smtp_server):
    smtp_server.refuse["a@example.org"] = "550 No such user"
    tasks.send_email.call(**MAIL)
    assert queued(tasks.send_email) == []
    assert smtp_server.envelopes == []
