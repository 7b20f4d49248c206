"""An uploaded photo and the thumbnail the worker makes of it."""

import uuid
from pathlib import PurePath

from django.db import models
from django.urls import reverse

from core.models import Job


def original_path(instance, filename):
    # A random name; the extension is the one PhotoForm gives for the format
    # it found. Nothing here comes from the client.
    return f"photos/originals/{uuid.uuid4().hex}{PurePath(filename).suffix}"


class Photo(Job):
    image = models.FileField(upload_to=original_path)
    thumbnail = models.FileField(upload_to="photos/thumbnails/", blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self):
        return f"Photo {self.pk}"

    def get_absolute_url(self):
        return reverse("photos:detail", args=[self.pk])

    def status_url(self):
        return reverse("photos:status", args=[self.pk])

    def enqueue(self):
        from . import tasks  # tasks -> services -> models: imported when used

        tasks.enqueue_thumbnail(self.pk)

    def status_payload(self):
        thumbnail_url = (
            reverse("photos:thumbnail", args=[self.pk]) if self.thumbnail else None
        )
        return {
            **super().status_payload(),
            "image_url": reverse("photos:image", args=[self.pk]),
            "thumbnail_url": thumbnail_url,
        }
