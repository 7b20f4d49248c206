"""Tasks that send mail (notifications, password resets), on Dramatiq.

A run that leaves recipients waiting (a mail server's "try again later")
raises ``dramatiq.Retry``: Dramatiq's Retries middleware sends the task
again after 15 to 30 s, then 30 s to 1 min, 1 to 2 min ... (back-off with
jitter, at most 1 h), and so does a run that raised.
``services.deliver`` counts the attempts per recipient and gives up after
NOTIFICATION_MAX_ATTEMPTS; ``max_retries`` bounds the runs to as many.
"""

import dramatiq
from django.conf import settings
from django.db import transaction

from core.actors import OPTIONS, failing_at_the_time_limit

from . import services
from .models import Notification

RETRIES = {
    "max_retries": settings.NOTIFICATION_MAX_ATTEMPTS - 1,
    "min_backoff": 15_000,  # ms: 15 to 30 s the first time
    "max_backoff": 3_600_000,
}


@dramatiq.actor(**OPTIONS, **RETRIES)
def send_notification(notification_id):
    with failing_at_the_time_limit(Notification, notification_id):
        waiting = services.deliver(notification_id)
    if waiting:
        raise dramatiq.Retry("Recipients left waiting: sent again later.")


@dramatiq.actor(**OPTIONS, **RETRIES)
def send_email(*, subject, body, to, html=None):
    """One ready-written message (the password reset's), retried like a delivery."""
    if services.send_message(subject=subject, body=body, to=to, html=html):
        raise dramatiq.Retry("The mail server did not take it: sent again later.")


def enqueue_delivery(notification_id):
    """Queue the sending once the transaction commits: a worker never looks
    for a notification that is not there yet, and nothing is queued if it
    rolls back."""
    transaction.on_commit(lambda: send_notification.send(notification_id))


def enqueue_email(*, subject, body, to, html=None):
    """Queue one message once the current transaction, if any, commits."""
    transaction.on_commit(
        lambda: send_email.send(subject=subject, body=body, to=to, html=html)
    )
