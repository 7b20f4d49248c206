"""Making a thumbnail of an uploaded photo: plain functions, no task queue."""

import io
import uuid

from django.conf import settings
from django.core.files.base import ContentFile
from PIL import ImageOps

from core.models import Status

from .images import ImageRejected, untrusted_image
from .models import Photo


def make_thumbnail(photo_id):
    """Decode the upload again, untrusted, and store a re-encoded thumbnail.

    A bad image ends the photo as ``failed`` with a readable message and
    returns normally: the worker has nothing to retry and keeps running.
    """
    photo = Photo.objects.get(pk=photo_id)
    if photo.status == Status.DONE:
        return
    photo.set_status(Status.RUNNING)
    try:
        with photo.image.open("rb") as fp, untrusted_image(fp) as image:
            width, height = image.size
            # Rotate by the EXIF orientation, then drop all metadata: the
            # thumbnail is re-encoded from pixels only.
            thumbnail = ImageOps.exif_transpose(image)
            thumbnail.thumbnail(settings.PHOTO_THUMBNAIL_SIZE)
            output = io.BytesIO()
            thumbnail.save(output, format="WEBP", quality=80)
    except ImageRejected as exc:
        photo.set_status(Status.FAILED, str(exc))
        return
    except Exception:
        photo.set_status(Status.FAILED, "The photo could not be processed.")
        raise

    photo.thumbnail.save(
        f"{uuid.uuid4().hex}.webp", ContentFile(output.getvalue()), save=False
    )
    photo.width, photo.height = width, height
    photo.status = Status.DONE
    photo.save(update_fields=["thumbnail", "width", "height", "status", "updated_at"])
