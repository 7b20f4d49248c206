"""Opening untrusted images with Pillow, the same way in the view and the worker.

Pillow only warns (``DecompressionBombWarning``) between its pixel limit and
twice that; here any warning of that kind, and any image over our own
PHOTO_MAX_PIXELS, is refused before the pixels are decoded.

Decoding can take far longer than the file's size suggests (a progressive
JPEG can hold a hundred thousand scans, each a pass over every pixel), and a
decoder busy in C code cannot be interrupted from Python. So the worker
has images decoded by another process (photos/decoder.py), with a time
limit and a memory cap.
"""

import io
import warnings
from contextlib import contextmanager

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

CORRUPT = "The image is truncated or corrupt."
TOO_MUCH_MEMORY = "The image needs more memory to decode than is allowed."


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
        except MemoryError:
            raise
        except Exception:
            # A parser meeting hostile bytes can raise almost anything
            # (OSError, ValueError for an over-large compressed chunk,
            # struct.error, ...): the file is refused, never a server error.
            raise ImageRejected(CORRUPT) from None
        with image:
            width, height = image.size
            if width * height > settings.PHOTO_MAX_PIXELS:
                raise ImageRejected(_too_large())
            try:
                yield image
            except (Image.DecompressionBombWarning, Image.DecompressionBombError):
                raise ImageRejected(_too_large()) from None
            except (ImageRejected, MemoryError):
                raise
            except Exception as exc:
                # Pillow's ways of saying "this data cannot be decoded".
                raise ImageRejected(CORRUPT) from exc


def decode(data, size):
    """Decode ``data`` and make its thumbnail (in the decoder, photos/decoder.py).

    Returns the outcome, a dict for the worker, and the WEBP bytes.
    """
    try:
        with untrusted_image(io.BytesIO(data)) as image:
            width, height = image.size
            # Rotate by the EXIF orientation, then drop all metadata: the
            # thumbnail is re-encoded from pixels only.
            small = ImageOps.exif_transpose(image)
            small.thumbnail(size)
            output = io.BytesIO()
            small.save(output, format="WEBP", quality=80)
    except ImageRejected as exc:
        return {"outcome": "rejected", "message": str(exc)}, b""
    except MemoryError:
        return {"outcome": "rejected", "message": TOO_MUCH_MEMORY}, b""
    except Exception as exc:  # reported to the worker, which raises
        return {"outcome": "error", "message": repr(exc)}, b""
    return {"outcome": "done", "width": width, "height": height}, output.getvalue()


def _too_large():
    megapixels = settings.PHOTO_MAX_PIXELS / 1_000_000
    return f"The image has too many pixels (at most {megapixels:g} megapixels)."
