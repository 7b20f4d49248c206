"""What the project's Dramatiq actors share: their queue, and a time limit
that ends the job row failed.

Dramatiq stops a task past TASK_TIME_LIMIT by raising TimeLimitExceeded in
its thread. It is a BaseException, so that no ``except Exception`` in the
task can swallow it: the services' own handlers do not see it either, and
the row would stay "running". ``failing_at_the_time_limit`` records it.
"""

import contextlib

from django.conf import settings
from django.utils import timezone
from dramatiq.middleware import TimeLimitExceeded

from core.models import Status

# Every actor of the project: its queue, and no retry of a task stopped at
# the time limit (it would be stopped again).
OPTIONS = {"queue_name": settings.TASK_QUEUE, "throws": (TimeLimitExceeded,)}


@contextlib.contextmanager
def failing_at_the_time_limit(model, pk):
    """Mark the job row ``model`` ``pk`` failed if the time limit stops the
    task inside the block; the exception goes on to Dramatiq."""
    try:
        yield
    except TimeLimitExceeded:
        model.objects.filter(pk=pk).exclude(status=Status.DONE).update(
            status=Status.FAILED,
            error=f"The task ran longer than {settings.TASK_TIME_LIMIT} s.",
            updated_at=timezone.now(),
        )
        raise
