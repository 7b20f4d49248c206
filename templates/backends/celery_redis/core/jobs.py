"""What every Celery task of the project is (CELERY task_cls, config/celery.py).

Late acknowledgement (settings) means a task whose worker process dies is
given to a worker again: a deploy's SIGKILL or an out-of-memory kill loses
nothing. A task that itself kills its worker process, every time, would then
run for ever; ``Task`` counts a message's redeliveries in the database and
fails it past TASK_MAX_REDELIVERIES.

A task on a job row names its model (``@shared_task(job_model=Photo)``) and
takes the row's id first: when it fails for good, the row ends ``failed``
with a sentence the user can read.
"""

from datetime import timedelta

from celery.contrib.django.task import DjangoTask
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.utils import timezone

from core.heartbeat import heartbeat
from core.models import Status, Throttle


class WorkerLostTooOften(Exception):
    """The message was given to a worker too many times: not run again."""


def count_redelivery(request):
    """Count a message delivered again (its worker died, or stopped twice)
    under its id and attempt; raise WorkerLostTooOften past the bound."""
    if not (request.delivery_info or {}).get("redelivered"):
        return
    key = f"redelivered:{request.id}:{request.retries}"
    count = Throttle.add_one(key, timezone.now() + timedelta(days=1))
    if count > settings.TASK_MAX_REDELIVERIES:
        raise WorkerLostTooOften(
            f"Its worker was lost {count} times while it ran: not run again."
        )


class Task(DjangoTask):
    # The model of the job row whose id is the task's first argument, or None.
    job_model = None

    def __call__(self, *args, **kwargs):
        # A task that outlives its time limit means the pool process is
        # stuck, not busy (core/heartbeat.py).
        with heartbeat.running(self.request.id):
            count_redelivery(self.request)
            return super().__call__(*args, **kwargs)

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        if self.job_model is None or not args:
            return
        if isinstance(exc, SoftTimeLimitExceeded):
            error = f"The task ran longer than {settings.TASK_TIME_LIMIT} s."
        elif isinstance(exc, WorkerLostTooOften):
            error = "The task stopped its worker every time it ran."
        else:
            return  # the services recorded it
        self.job_model.objects.filter(pk=args[0]).exclude(status=Status.DONE).update(
            status=Status.FAILED, error=error, updated_at=timezone.now()
        )
