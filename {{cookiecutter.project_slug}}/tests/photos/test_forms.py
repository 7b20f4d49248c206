from django.core.files.uploadedfile import SimpleUploadedFile

from photos.forms import PhotoForm
from tests import images


def form(data, name="upload.png"):
    return PhotoForm(files={"image": SimpleUploadedFile(name, data)})


def test_accepts_an_image_and_rewinds_it():
    f = form(images.png())
    assert f.is_valid(), f.errors
    assert f.cleaned_data["image"].read(8) == b"\x89PNG\r\n\x1a\n"


def test_refuses_a_file_over_the_size_limit(settings):
    settings.PHOTO_MAX_UPLOAD_BYTES = 1024 * 1024
    f = form(images.png() + b"\0" * 1024 * 1024)
    assert not f.is_valid()
    assert f.errors["image"] == ["The file is larger than 1 MB."]


def test_refuses_a_non_image():
    f = form(b"hello", name="photo.png")
    assert not f.is_valid()
    assert f.errors["image"][0].startswith("The file is not an image")


def test_refuses_a_decompression_bomb():
    f = form(images.bomb_png())
    assert not f.is_valid()
    assert "too many pixels" in f.errors["image"][0]


def test_a_missing_file_is_required():
    assert PhotoForm(files={}).errors["image"] == ["This field is required."]
