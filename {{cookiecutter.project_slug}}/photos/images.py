"""Opening untrusted images with Pillow, the same way in the view and the worker.

Pillow only warns (``DecompressionBombWarning``) between its pixel limit and
twice that; here any warning of that kind, and any image over our own
PHOTO_MAX_PIXELS, is refused before the pixels are decoded.
"""

import warnings
from contextlib import contextmanager

from django.conf import settings
from PIL import Image, UnidentifiedImageError


class ImageRejected(Exception):
    """Raised with a sentence that can be shown to the user as it is."""


@contextmanager
def untrusted_image(fp):
    """Open ``fp``; check format and size from the header; yield the image.

    Decoding (``load()``, ``thumbnail()``...) inside the block raises
    ImageRejected for truncated or corrupt data.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(fp, formats=settings.PHOTO_ALLOWED_FORMATS)
        except UnidentifiedImageError:
            allowed = ", ".join(settings.PHOTO_ALLOWED_FORMATS)
            raise ImageRejected(
                f"The file is not an image in a supported format ({allowed})."
            ) from None
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise ImageRejected(_too_large()) from None
        with image:
            width, height = image.size
            if width * height > settings.PHOTO_MAX_PIXELS:
                raise ImageRejected(_too_large())
            try:
                yield image
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                # Pillow's ways of saying "this data cannot be decoded".
                raise ImageRejected("The image is truncated or corrupt.") from exc
            except (Image.DecompressionBombWarning, Image.DecompressionBombError):
                raise ImageRejected(_too_large()) from None


def _too_large():
    megapixels = settings.PHOTO_MAX_PIXELS / 1_000_000
    return f"The image has too many pixels (at most {megapixels:g} megapixels)."
