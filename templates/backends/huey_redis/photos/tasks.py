"""Background tasks for photos, on huey."""

from django.conf import settings
from django.db import transaction
from huey.contrib.djhuey import db_task

from . import services


# Run again, twice at most, 10 then 20 s later if it raises (the database
# went away); a bad image is recorded failed, not raised, and is not tried
# again. A task whose worker died is lost: huey is at-most-once (README).
@db_task(timeout=settings.TASK_TIME_LIMIT, retries=2, retry_delay=10, retry_backoff=2)
def make_thumbnail(photo_id):
    services.make_thumbnail(photo_id)


def enqueue_thumbnail(photo_id):
    """Queue the thumbnail once the transaction that creates the photo commits."""
    transaction.on_commit(lambda: make_thumbnail(photo_id))
