"""Background tasks for photos, on Celery."""

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from . import services
from .models import Photo


# Run again, twice at most, 5 to 10 s later if it raises; a bad image is
# recorded failed, not raised, and is not tried again; nor is a task
# stopped at the time limit (it would be stopped again). A task whose
# worker died is not a retry: the broker gives it to another worker.
@shared_task(
    job_model=Photo,
    autoretry_for=(Exception,),
    dont_autoretry_for=(SoftTimeLimitExceeded,),
    max_retries=2,
    retry_backoff=5,
    retry_jitter=False,
)
def make_thumbnail(photo_id):
    services.make_thumbnail(photo_id)


def enqueue_thumbnail(photo_id):
    """Queue the thumbnail once the transaction that creates the photo commits."""
    make_thumbnail.delay_on_commit(photo_id)
