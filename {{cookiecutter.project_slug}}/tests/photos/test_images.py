import io
import re
import threading
import time
import warnings

import pytest
from PIL import Image

from photos.decoder import Decoder, thumbnail
from photos.images import CORRUPT, TOO_MUCH_MEMORY, ImageRejected, untrusted_image
from tests import images


def test_opens_an_allowed_image():
    with untrusted_image(io.BytesIO(images.png((30, 20)))) as image:
        assert (image.format, image.size) == ("PNG", (30, 20))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"%PDF-1.7", "The file is not an image in a supported format"),
        (images.bmp(), "The file is not an image in a supported format"),
        (images.bomb_png(), "The image has too many pixels (at most 40 megapixels)."),
    ],
    ids=["not-an-image", "format-not-allowed", "decompression-bomb"],
)
def test_refuses_from_the_header(data, message):
    with (
        pytest.raises(ImageRejected, match=re.escape(message)),
        untrusted_image(io.BytesIO(data)),
    ):
        pass


def test_our_pixel_limit_is_below_pillows(settings):
    settings.PHOTO_MAX_PIXELS = 100
    with (
        pytest.raises(ImageRejected, match=r"at most 0\.0001 megapixels"),
        untrusted_image(io.BytesIO(images.png((20, 20)))),
    ):
        pass


def test_pillow_bomb_warning_is_an_error(settings, monkeypatch):
    settings.PHOTO_MAX_PIXELS = 10**9
    # Between Pillow's limit and twice it, Pillow only warns.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)
    with (
        pytest.raises(ImageRejected, match="too many pixels"),
        untrusted_image(io.BytesIO(images.png((20, 20)))),
    ):
        pass


def test_truncated_data_is_refused_when_decoded():
    data = io.BytesIO(images.truncated_png())
    with (
        pytest.raises(ImageRejected, match=r"The image is truncated or corrupt\."),
        untrusted_image(data) as image,
    ):
        image.load()


def test_a_chunk_that_inflates_too_far_is_refused_from_the_header():
    with (
        pytest.raises(ImageRejected, match=re.escape(CORRUPT)),
        untrusted_image(io.BytesIO(images.chunk_bomb_png())),
    ):
        pass


@pytest.mark.parametrize("format", ["PNG", "JPEG", "GIF", "WEBP"])
def test_mutated_files_open_or_are_refused_never_anything_else(format):
    for data in images.mutants(images.small(format), count=150, seed=format):
        try:
            with untrusted_image(io.BytesIO(data)) as image:
                image.load()
        except ImageRejected:
            pass


def test_thumbnail_is_decoded_in_a_child_within_the_budget():
    width, height, webp = thumbnail(images.png((1600, 1200)), (320, 320), 10)
    assert (width, height) == (1600, 1200)
    with Image.open(io.BytesIO(webp)) as small:
        assert (small.format, small.size) == ("WEBP", (320, 240))


def test_a_decoder_past_the_budget_is_stopped():
    slow = images.many_scan_jpeg(scans=80_000)  # about 4 s to decode here
    assert len(slow) < 1_000_000
    started = time.monotonic()
    with pytest.raises(ImageRejected, match=r"took longer than 0\.5 s to decode"):
        thumbnail(slow, (320, 320), 0.5)
    assert time.monotonic() - started < 2


def test_a_decoder_past_its_memory_is_stopped(settings):
    # 40 megapixels of RGBA take about 768 MiB to decode here: 3 x the cap.
    settings.PHOTO_DECODE_MEMORY_BYTES = 256 * 1024 * 1024
    large = io.BytesIO()
    Image.new("RGBA", (8000, 5000), "teal").save(large, format="PNG")
    with pytest.raises(ImageRejected, match=re.escape(TOO_MUCH_MEMORY)):
        thumbnail(large.getvalue(), (320, 320), 60)


def test_a_worker_with_threads_is_never_forked():
    """Python warns when a process with threads forks: the child may wait
    forever on a lock another thread held. The decoder is a new process."""
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # A decoder of its own: started while the other thread runs.
            decoder = Decoder()
            width, height, _ = decoder.thumbnail(images.png((64, 48)), (32, 32), 10)
    finally:
        stop.set()
        other.join()
    assert (width, height) == (64, 48)
    assert [str(w.message) for w in caught if "multi-threaded" in str(w.message)] == []


def test_after_a_decoder_stopped_for_time_the_next_image_is_decoded():
    with pytest.raises(ImageRejected, match="took longer"):
        thumbnail(images.many_scan_jpeg(scans=80_000), (320, 320), 0.5)
    width, height, _ = thumbnail(images.png((640, 480)), (320, 320), 10)
    assert (width, height) == (640, 480)


def test_a_decoder_killed_between_images_is_replaced():
    decoder = Decoder()
    assert decoder.thumbnail(images.png((64, 48)), (32, 32), 10)[:2] == (64, 48)
    decoder.process.kill()  # as the OOM killer would
    decoder.process.wait()
    assert decoder.thumbnail(images.png((48, 64)), (32, 32), 10)[:2] == (48, 64)
