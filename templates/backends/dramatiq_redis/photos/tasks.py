"""Background tasks for photos, on Dramatiq."""

import dramatiq
from django.db import transaction

from core.actors import OPTIONS, failing_at_the_time_limit

from . import services
from .models import Photo


# Run again, twice at most, 5 to 10 s later if it raises; a bad image is
# recorded failed, not raised, and is not tried again. A task whose worker
# died is not a retry: the broker gives it to another worker.
@dramatiq.actor(**OPTIONS, max_retries=2, min_backoff=5_000)
def make_thumbnail(photo_id):
    with failing_at_the_time_limit(Photo, photo_id):
        services.make_thumbnail(photo_id)


def enqueue_thumbnail(photo_id):
    """Queue the thumbnail once the transaction that creates the photo commits."""
    transaction.on_commit(lambda: make_thumbnail.send(photo_id))
