"""Background tasks for photos, on Django's task framework."""

from django.tasks import task

from . import services


@task()
def make_thumbnail(photo_id):
    services.make_thumbnail(photo_id)


def enqueue_thumbnail(photo_id):
    """Queue the thumbnail; call inside the transaction that creates the photo.

    The task row commits with the photo row (same database), so the worker
    never sees one without the other.
    """
    make_thumbnail.enqueue(photo_id)
