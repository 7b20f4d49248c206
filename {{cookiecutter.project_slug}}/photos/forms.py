"""Cheap checks in the request: size, format and dimensions from the header.

Decoding the pixels is the worker's job; a file that passes here can still
end as ``failed`` there (a truncated file, say).
"""

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from .images import ImageRejected, untrusted_image

EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp"}


class PhotoForm(forms.Form):
    image = forms.FileField()

    def clean_image(self):
        upload = self.cleaned_data["image"]
        limit = settings.PHOTO_MAX_UPLOAD_BYTES
        if upload.size > limit:
            raise ValidationError(
                f"The file is larger than {limit // (1024 * 1024)} MB."
            )
        try:
            with untrusted_image(upload) as image:
                format = image.format
        except ImageRejected as exc:
            raise ValidationError(str(exc)) from None
        finally:
            upload.seek(0)
        # Stored under a name of ours (photos.models.original_path): the
        # extension of the format found, never the client's file name.
        upload.name = f"upload{EXTENSIONS.get(format, '.' + format.lower())}"
        return upload
