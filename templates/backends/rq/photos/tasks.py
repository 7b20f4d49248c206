"""Background tasks for photos, on RQ."""

from django.conf import settings
from django_rq import job
from rq import Retry

from . import services


# Run again at once, twice at most, if its worker dies or is stopped
# mid-task, or if it raises (a bad image is recorded failed, not raised).
@job(settings.RQ_QUEUE, retry=Retry(max=2), failure_ttl=settings.RQ_FAILURE_TTL)
def make_thumbnail(photo_id):
    services.make_thumbnail(photo_id)


def enqueue_thumbnail(photo_id):
    """Queue the thumbnail; django-rq does it once the transaction commits."""
    make_thumbnail.delay(photo_id)
