"""Opening untrusted images with Pillow, the same way in the view and the worker.

Pillow only warns (``DecompressionBombWarning``) between its pixel limit and
twice that; here any warning of that kind, and any image over our own
PHOTO_MAX_PIXELS, is refused before the pixels are decoded.

Decoding can take far longer than the file's size suggests (a progressive
JPEG can hold a hundred thousand scans, each a pass over every pixel), and a
decoder busy in C code cannot be interrupted from Python. So the worker
decodes in a forked child process, killed when PHOTO_DECODE_SECONDS are over.
"""

import io
import os
import pickle
import select
import signal
import time
import warnings
from contextlib import contextmanager

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

from core import forks

CORRUPT = "The image is truncated or corrupt."


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
            except ImageRejected:
                raise
            except Exception as exc:
                # Pillow's ways of saying "this data cannot be decoded".
                raise ImageRejected(CORRUPT) from exc


def thumbnail(data, size, seconds):
    """WEBP thumbnail of the image ``data``: (width, height, webp bytes).

    Decoded in a forked child process that is killed after ``seconds``: no
    image holds the worker longer. (os.fork, not multiprocessing: some
    workers run tasks in daemonic processes, which may not have children.)
    """
    read_end, write_end = os.pipe()
    worker = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: decode, send the outcome, exit at once
        forks.die_with(worker)  # a killed worker leaves no decoder behind
        os.close(read_end)
        _decode_and_report(data, size, write_end)
    os.close(write_end)
    try:
        payload = _read_within(read_end, deadline=time.monotonic() + seconds)
    finally:
        os.close(read_end)
        if payload is None:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    if payload is None:
        raise ImageRejected(f"The image took longer than {seconds:g} s to decode.")
    if not payload:  # the child died without a word: the decoder crashed
        raise ImageRejected(CORRUPT)
    # Written by our own child, never by a client.
    outcome, value = pickle.loads(payload)  # noqa: S301
    if outcome == "rejected":
        raise ImageRejected(value)
    if outcome == "error":
        raise RuntimeError(f"Decoding the image failed in the child: {value}")
    return value


def _decode_and_report(data, size, fd):
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)  # not the worker's handlers
    try:
        with untrusted_image(io.BytesIO(data)) as image:
            width, height = image.size
            # Rotate by the EXIF orientation, then drop all metadata: the
            # thumbnail is re-encoded from pixels only.
            small = ImageOps.exif_transpose(image)
            small.thumbnail(size)
            output = io.BytesIO()
            small.save(output, format="WEBP", quality=80)
        outcome = ("done", (width, height, output.getvalue()))
    except ImageRejected as exc:
        outcome = ("rejected", str(exc))
    except BaseException as exc:  # reported to the parent, which raises
        outcome = ("error", repr(exc))
    with os.fdopen(fd, "wb") as pipe:
        pipe.write(pickle.dumps(outcome))
    os._exit(0)


def _read_within(fd, deadline):
    """Everything written to ``fd`` until EOF, or None at the deadline."""
    chunks = []
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([fd], [], [], left)
        if readable:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    return None


def _too_large():
    megapixels = settings.PHOTO_MAX_PIXELS / 1_000_000
    return f"The image has too many pixels (at most {megapixels:g} megapixels)."
