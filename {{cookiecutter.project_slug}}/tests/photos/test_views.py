import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from photos import services, tasks
from photos.models import Photo
from tests import images
from tests.backend import queued
from tests.queued import Queued

pytestmark = pytest.mark.django_db


def upload(client, data=None, name="sky.png", **kwargs):
    data = images.png() if data is None else data
    return client.post("/photos/", {"image": SimpleUploadedFile(name, data)}, **kwargs)


def test_post_stores_the_file_queues_the_id_and_answers_202(
    owner_client, owner, django_capture_on_commit_callbacks
):
    # Some backends queue once the transaction commits: let it commit.
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(owner_client)

    assert response.status_code == 202
    photo = Photo.objects.get(owner=owner)
    assert response.json() == {
        "id": photo.pk,
        "status_url": f"/photos/{photo.pk}/status/",
    }
    assert photo.status == "pending"
    assert photo.image.storage.exists(photo.image.name)
    assert "sky" not in photo.image.name  # the client's file name is not reused
    assert queued(tasks.make_thumbnail) == [Queued([photo.pk], {}, None)]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"not an image", "The file is not an image in a supported format"),
        (images.bomb_png(), "The image has too many pixels"),
        (images.chunk_bomb_png(), "The image is truncated or corrupt."),
    ],
    ids=["not-an-image", "decompression-bomb", "chunk-bomb"],
)
def test_bad_upload_answers_400_and_stores_nothing(owner_client, data, error):
    response = upload(owner_client, data)
    assert response.status_code == 400
    assert response.json()["error"].startswith(error)
    assert Photo.objects.count() == 0
    assert queued(tasks.make_thumbnail) == []


def test_missing_file_answers_400(owner_client):
    response = owner_client.post("/photos/", {})
    assert response.json() == {"error": "This field is required."}


def test_the_owner_gets_the_photo_as_uploaded(owner_client):
    data = images.png()
    photo_id = upload(owner_client, data).json()["id"]
    url = owner_client.get(f"/photos/{photo_id}/status/").json()["image_url"]
    response = owner_client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == data


def test_status_and_thumbnail_once_done(owner_client):
    photo_id = upload(owner_client).json()["id"]
    assert owner_client.get(f"/photos/{photo_id}/status/").json() == {
        "id": photo_id,
        "status": "pending",
        "error": None,
        "image_url": f"/photos/{photo_id}/image/",
        "thumbnail_url": None,
    }
    assert owner_client.get(f"/photos/{photo_id}/thumbnail/").status_code == 404

    services.make_thumbnail(photo_id)

    body = owner_client.get(f"/photos/{photo_id}/status/").json()
    assert body["status"] == "done"
    response = owner_client.get(body["thumbnail_url"])
    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"


@pytest.mark.parametrize("suffix", ["", "status/", "image/", "thumbnail/"])
def test_another_users_photo_is_not_found(owner_client, other_client, suffix):
    photo_id = upload(owner_client).json()["id"]
    services.make_thumbnail(photo_id)
    assert other_client.get(f"/photos/{photo_id}/{suffix}").status_code == 404


def test_browser_is_sent_to_the_photo_page(owner_client):
    response = upload(owner_client, headers={"Accept": "text/html"})
    assert response.status_code == 302
    assert response["Location"] == f"/photos/{Photo.objects.get().pk}/"


@pytest.mark.parametrize(
    ("data", "name", "extension"),
    [
        (images.png(), "shell.php", ".png"),
        (images.rotated_jpeg(), "photo.png", ".jpg"),
        (images.small("GIF"), "no-extension", ".gif"),
        (images.small("WEBP"), "x." + "a" * 300, ".webp"),
    ],
    ids=["php", "wrong-extension", "none", "300-character-extension"],
)
def test_the_stored_name_is_ours_with_the_formats_extension(
    owner_client, data, name, extension
):
    response = upload(owner_client, data, name=name)
    assert response.status_code == 202, response.content
    stored = Photo.objects.get().image.name
    assert re.fullmatch(r"photos/originals/[0-9a-f]{32}" + re.escape(extension), stored)


def test_detail_page_shows_the_thumbnail_and_the_error_as_served(owner_client):
    photo_id = upload(owner_client).json()["id"]
    page = owner_client.get(f"/photos/{photo_id}/").content.decode()
    thumbnail = re.search(r'<img class="thumbnail"[^>]*>', page)[0]
    assert thumbnail.endswith(" hidden>")  # until there is one

    services.make_thumbnail(photo_id)
    page = owner_client.get(f"/photos/{photo_id}/").content.decode()
    assert f'src="/photos/{photo_id}/thumbnail/"' in page
    assert 'data-status="done">Done</span>' in page
    assert '<p class="error" data-field="error" hidden></p>' in page

    failed = Photo.objects.get()
    failed.set_status("failed", "The file is not an image we can read.")
    page = owner_client.get(f"/photos/{photo_id}/").content.decode()
    assert '<p class="error" data-field="error">The file is not an image' in page
