"""Tasks that send mail (notifications, password resets), on Celery.

A run that leaves recipients waiting (a mail server's "try again later")
queues the task again (``self.retry``) after 15 to 30 s, then 30 s to 1 min,
1 to 2 min ... (back-off with jitter). ``services.deliver`` counts the
attempts per recipient and gives up after NOTIFICATION_MAX_ATTEMPTS;
``max_retries`` bounds the runs to as many. A wait is at most TASK_MAX_DELAY
(settings say why). A run that lost the database is queued again the same
way (``autoretry_for``): not the notification's fault. A run that raises
anything else is not run again: the notification ends failed with a
sentence (services.deliver).
"""

import random

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from . import services
from .models import Notification

OPTIONS = {
    "bind": True,
    "max_retries": settings.NOTIFICATION_MAX_ATTEMPTS - 1,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 15,  # s: up to 15 s the first time, 30 s next (jitter)
    "retry_backoff_max": settings.TASK_MAX_DELAY,
}


def later(task):
    """Queue ``task`` again: 15 to 30 s after its first run, twice as long
    after each next one."""
    delay = min(15 * 2**task.request.retries, settings.TASK_MAX_DELAY / 2)
    return task.retry(countdown=delay + random.uniform(0, delay))  # noqa: S311


@shared_task(**OPTIONS, job_model=Notification)
def send_notification(self, notification_id):
    if services.deliver(notification_id):
        raise later(self)


@shared_task(**OPTIONS)
def send_email(self, *, subject, body, to, html=None):
    """One ready-written message (the password reset's), retried like a delivery."""
    if services.send_message(subject=subject, body=body, to=to, html=html):
        raise later(self)


def enqueue_delivery(notification_id):
    """Queue the sending once the transaction commits: a worker never looks
    for a notification that is not there yet, and nothing is queued if it
    rolls back."""
    send_notification.delay_on_commit(notification_id)


def enqueue_email(*, subject, body, to, html=None):
    """Queue one message once the current transaction, if any, commits."""
    send_email.delay_on_commit(subject=subject, body=body, to=to, html=html)
