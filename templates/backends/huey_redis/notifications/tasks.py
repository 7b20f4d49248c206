"""Tasks that send mail (notifications, password resets), on huey.

A run that leaves recipients waiting raises ``DeliveryPending``; huey then
runs the task again after 30 s, 1, 2 and 4 min (``retry_backoff``).
``services.deliver`` counts the attempts per recipient and gives up after
NOTIFICATION_MAX_ATTEMPTS, so the retries end there too.
"""

from django.conf import settings
from django.db import transaction
from huey.contrib.djhuey import db_task

from . import services


class DeliveryPending(Exception):
    """Some recipients' mail servers failed for now: try them again later."""


@db_task(
    retries=settings.NOTIFICATION_MAX_ATTEMPTS - 1,
    retry_delay=30,
    retry_backoff=2,
    timeout=settings.TASK_TIME_LIMIT,
)
def send_notification(notification_id):
    if services.deliver(notification_id):
        raise DeliveryPending(f"Notification {notification_id}: retrying later.")


@db_task(
    retries=settings.NOTIFICATION_MAX_ATTEMPTS - 1,
    retry_delay=30,
    retry_backoff=2,
    timeout=settings.TASK_TIME_LIMIT,
)
def send_email(*, subject, body, to, html=None):
    """One ready-written message (the password reset's), retried like a delivery."""
    if services.send_message(subject=subject, body=body, to=to, html=html):
        raise DeliveryPending(f"Mail to {to}: retrying later.")


def enqueue_delivery(notification_id):
    """Queue the sending once the creating transaction commits.

    huey's queue is not the database: queued earlier, a worker could look for
    the notification before it exists; and nothing is queued if the
    transaction rolls back.
    """
    transaction.on_commit(lambda: send_notification(notification_id))


def enqueue_email(*, subject, body, to, html=None):
    """Queue one message once the current transaction, if any, commits."""
    transaction.on_commit(
        lambda: send_email(subject=subject, body=body, to=to, html=html)
    )
