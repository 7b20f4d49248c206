"""Background tasks for notifications, on Django's task framework.

``django.tasks`` has no retries, so the task enqueues itself again with a
growing delay while some recipients wait; ``services.deliver`` counts the
attempts per recipient and gives up after NOTIFICATION_MAX_ATTEMPTS.
"""

from datetime import timedelta

from django.tasks import task
from django.utils import timezone

from . import services

FIRST_RETRY_DELAY = timedelta(seconds=30)
MAX_RETRY_DELAY = timedelta(hours=1)


@task()
def send_notification(notification_id, attempt=1):
    if services.deliver(notification_id):
        delay = min(FIRST_RETRY_DELAY * 2 ** (attempt - 1), MAX_RETRY_DELAY)
        send_notification.using(run_after=timezone.now() + delay).enqueue(
            notification_id, attempt + 1
        )


def enqueue_delivery(notification_id):
    """Queue the sending of a notification; call inside the creating transaction.

    django-tasks-db writes the task as a row in the same database, so the
    worker sees it exactly when the notification commits, and never without
    it: no ``on_commit`` gap in which a crash would lose the task.
    """
    send_notification.enqueue(notification_id)
