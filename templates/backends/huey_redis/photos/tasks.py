"""Background tasks for photos, on huey."""

from django.conf import settings
from django.db import transaction
from huey.contrib.djhuey import db_task

from . import services


@db_task(timeout=settings.TASK_TIME_LIMIT)
def make_thumbnail(photo_id):
    services.make_thumbnail(photo_id)


def enqueue_thumbnail(photo_id):
    """Queue the thumbnail once the transaction that creates the photo commits."""
    transaction.on_commit(lambda: make_thumbnail(photo_id))
