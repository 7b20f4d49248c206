import time

import pytest
from django.core.files.base import ContentFile
from PIL import Image

from core.models import Status
from photos import services
from photos.models import Photo
from tests import images

pytestmark = pytest.mark.django_db


def photo_of(owner, data, name="upload.png"):
    return Photo.objects.create(owner=owner, image=ContentFile(data, name=name))


def test_makes_a_webp_thumbnail_that_fits(owner, settings):
    photo = photo_of(owner, images.png((1600, 1200)))

    services.make_thumbnail(photo.pk)

    photo.refresh_from_db()
    assert (photo.status, photo.error) == (Status.DONE, "")
    assert (photo.width, photo.height) == (1600, 1200)
    with photo.thumbnail.open("rb") as f, Image.open(f) as thumbnail:
        assert thumbnail.format == "WEBP"
        assert thumbnail.size == (320, 240)
        assert thumbnail.size[0] <= settings.PHOTO_THUMBNAIL_SIZE[0]


def test_applies_the_exif_orientation(owner):
    photo = photo_of(owner, images.rotated_jpeg((400, 200)), name="sky.jpg")
    services.make_thumbnail(photo.pk)
    photo.refresh_from_db()
    with photo.thumbnail.open("rb") as f, Image.open(f) as thumbnail:
        assert thumbnail.size == (160, 320)  # portrait, as the camera meant
        assert not thumbnail.getexif()


def test_truncated_image_fails_with_a_message(owner, caplog):
    photo = photo_of(owner, images.truncated_png())
    services.make_thumbnail(photo.pk)
    photo.refresh_from_db()
    assert photo.status == Status.FAILED
    assert photo.error == "The image is truncated or corrupt."
    assert not photo.thumbnail
    # The worker's log says which photo failed and why.
    assert f"Photo {photo.pk}: refused: The image is truncated or corrupt." in (
        caplog.text
    )


def test_bomb_that_skipped_the_form_fails_in_the_worker(owner):
    photo = photo_of(owner, images.bomb_png())
    services.make_thumbnail(photo.pk)
    photo.refresh_from_db()
    assert photo.status == Status.FAILED
    assert "too many pixels" in photo.error


def test_a_done_photo_is_not_processed_again(owner):
    photo = photo_of(owner, images.png())
    services.make_thumbnail(photo.pk)
    photo.refresh_from_db()
    first = photo.thumbnail.name

    services.make_thumbnail(photo.pk)

    photo.refresh_from_db()
    assert photo.thumbnail.name == first


def test_a_photo_that_decodes_too_slowly_fails_and_frees_the_worker(owner, settings):
    settings.PHOTO_DECODE_SECONDS = 1
    # About 4 s of decoding here: well past the budget on a faster machine.
    photo = photo_of(owner, images.many_scan_jpeg(scans=80_000), "scans.jpg")

    started = time.monotonic()
    services.make_thumbnail(photo.pk)

    assert time.monotonic() - started < 3
    photo.refresh_from_db()
    assert (photo.status, photo.error) == (
        Status.FAILED,
        "The image took longer than 1 s to decode.",
    )
