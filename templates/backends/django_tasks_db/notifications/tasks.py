"""Tasks that send mail (notifications, password resets), on django.tasks.

``django.tasks`` has no retries, so the task enqueues itself again with a
growing delay while some recipients wait; ``services.deliver`` counts the
attempts per recipient and gives up after NOTIFICATION_MAX_ATTEMPTS.
"""

from datetime import timedelta

from django.conf import settings
from django.tasks import task
from django.utils import timezone

from . import services

FIRST_RETRY_DELAY = timedelta(seconds=30)
MAX_RETRY_DELAY = timedelta(hours=1)


class NotSent(Exception):
    """The last attempt at a message failed: the task ends failed, logged."""


def retry_delay(attempt):
    return min(FIRST_RETRY_DELAY * 2 ** (attempt - 1), MAX_RETRY_DELAY)


@task()
def send_notification(notification_id, attempt=1):
    if services.deliver(notification_id):
        send_notification.using(
            run_after=timezone.now() + retry_delay(attempt)
        ).enqueue(notification_id, attempt + 1)


@task()
def send_email(*, subject, body, to, html=None, attempt=1):
    """One ready-written message (the password reset's), retried like a delivery."""
    message = {"subject": subject, "body": body, "to": to, "html": html}
    if services.send_message(**message):
        if attempt >= settings.NOTIFICATION_MAX_ATTEMPTS:
            raise NotSent(f"Mail to {to} not sent after {attempt} attempts.")
        send_email.using(run_after=timezone.now() + retry_delay(attempt)).enqueue(
            **message, attempt=attempt + 1
        )


def enqueue_delivery(notification_id):
    """Queue the sending of a notification; call inside the creating transaction.

    django-tasks-db writes the task as a row in the same database, so the
    worker sees it exactly when the notification commits, and never without
    it: no ``on_commit`` gap in which a crash would lose the task.
    """
    send_notification.enqueue(notification_id)


def enqueue_email(*, subject, body, to, html=None):
    """Queue one message; in a transaction, it is queued if that commits."""
    send_email.enqueue(subject=subject, body=body, to=to, html=html)
