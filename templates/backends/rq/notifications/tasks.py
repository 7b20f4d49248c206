"""Tasks that send mail (notifications, password resets), on RQ.

A run that leaves recipients waiting queues the task again after 30 s, then
1, 2, 4 min ... (``enqueue_in``: RQ's scheduler, which one worker runs,
moves it to the queue when due); ``services.deliver`` counts the attempts
per recipient and gives up after NOTIFICATION_MAX_ATTEMPTS. RQ's ``Retry``
is for a run cut short: its worker died, or was stopped twice, or it
raised. Such a run is repeated at once, twice at most.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django_rq import get_queue, job
from rq import Retry

from . import services

logger = logging.getLogger(__name__)

OPTIONS = {"retry": Retry(max=2), "failure_ttl": settings.RQ_FAILURE_TTL}
FIRST_RETRY_DELAY = timedelta(seconds=30)
MAX_RETRY_DELAY = timedelta(hours=1)


def retry_delay(attempt):
    return min(FIRST_RETRY_DELAY * 2 ** (attempt - 1), MAX_RETRY_DELAY)


def queue_later(task, attempt, *args, **kwargs):
    """Queue the next attempt of ``task`` after this one's delay."""
    get_queue(settings.RQ_QUEUE).enqueue_in(
        retry_delay(attempt), task, *args, attempt=attempt + 1, **kwargs, **OPTIONS
    )


@job(settings.RQ_QUEUE, **OPTIONS)
def send_notification(notification_id, attempt=1):
    if services.deliver(notification_id):
        queue_later(send_notification, attempt, notification_id)


@job(settings.RQ_QUEUE, **OPTIONS)
def send_email(*, subject, body, to, html=None, attempt=1):
    """One ready-written message (the password reset's), retried like a delivery."""
    message = {"subject": subject, "body": body, "to": to, "html": html}
    if not services.send_message(**message):
        return
    if attempt >= settings.NOTIFICATION_MAX_ATTEMPTS:
        # Not raised: RQ's Retry would send it again.
        logger.error("Mail to %s not sent after %d attempts: dropped.", to, attempt)
        return
    queue_later(send_email, attempt, **message)


def enqueue_delivery(notification_id):
    """Queue the sending; django-rq does it once the transaction commits
    (COMMIT_MODE "on_db_commit"), so a worker never looks for a notification
    that is not there yet, and nothing is queued if it rolls back."""
    send_notification.delay(notification_id)


def enqueue_email(*, subject, body, to, html=None):
    """Queue one message once the current transaction, if any, commits."""
    send_email.delay(subject=subject, body=body, to=to, html=html)
