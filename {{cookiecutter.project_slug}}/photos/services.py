"""Making a thumbnail of an uploaded photo: plain functions, no task queue."""

import logging
import uuid

from django.conf import settings
from django.core.files.base import ContentFile

from core import claims
from core.models import Status

from .decoder import thumbnail
from .images import ImageRejected
from .models import Photo

logger = logging.getLogger(__name__)


def make_thumbnail(photo_id):
    """Decode the upload again, untrusted, and store a re-encoded thumbnail.

    A bad image, or one that takes longer than PHOTO_DECODE_SECONDS to
    decode, ends the photo as ``failed`` with a readable message and returns
    normally: the worker has nothing to retry and takes the next task.
    """
    photo = Photo.objects.get(pk=photo_id)
    if photo.status == Status.DONE:
        # A task run again after its worker died once the photo was saved.
        logger.info("Photo %s: thumbnail already made", photo_id)
        return
    photo.set_status(Status.RUNNING)
    try:
        with photo.image.open("rb") as fp:
            data = fp.read()
        width, height, webp = thumbnail(
            data, settings.PHOTO_THUMBNAIL_SIZE, settings.PHOTO_DECODE_SECONDS
        )
    except ImageRejected as exc:
        logger.warning("Photo %s: refused: %s", photo_id, exc)
        photo.set_status(Status.FAILED, str(exc))
        return
    except Exception:
        photo.set_status(Status.FAILED, "The photo could not be processed.")
        raise

    photo.thumbnail.save(f"{uuid.uuid4().hex}.webp", ContentFile(webp), save=False)
    photo.width, photo.height = width, height
    photo.status = Status.DONE
    with claims.held():
        photo.save(
            update_fields=["thumbnail", "width", "height", "status", "updated_at"]
        )
    logger.info("Photo %s: thumbnail made (%dx%d)", photo_id, width, height)


def delete_unfinished(*, before):
    """Delete the photos created before ``before`` that never ended ``done``.

    Their files go with them. Returns how many photos were deleted.
    """
    stale = Photo.objects.exclude(status=Status.DONE).filter(created_at__lt=before)
    deleted = 0
    for photo in stale.iterator():
        photo.image.delete(save=False)
        photo.thumbnail.delete(save=False)
        photo.delete()
        deleted += 1
    return deleted


def delete_orphaned_files(*, before):
    """Delete the media files under photos/ that no photo refers to.

    Only files last written before ``before``: a younger one may belong to
    an upload whose row is not committed yet. Returns how many were deleted.
    """
    storage = Photo.image.field.storage
    referenced = set()
    for names in Photo.objects.values_list("image", "thumbnail").iterator():
        referenced.update(names)
    deleted = 0
    for folder in ("photos/originals", "photos/thumbnails"):
        try:
            names = storage.listdir(folder)[1]
        except FileNotFoundError:  # nothing uploaded yet (a bucket has no folders)
            continue
        for name in names:
            path = f"{folder}/{name}"
            if path not in referenced and storage.get_modified_time(path) < before:
                storage.delete(path)
                deleted += 1
    return deleted
