"""Views the benchmark compares with the project's own upload view.

Imported inside the baked project (on PYTHONPATH) as a URLconf.
"""

from config import urls as project_urls
from django.db import transaction
from django.http import JsonResponse
from django.urls import path
from photos import services
from photos.forms import PhotoForm
from photos.models import Photo


def save_only(request):
    """POST /photos/ without the enqueue: the floor for an upload request."""
    photo = _validate_and_save(request)
    return JsonResponse({"id": photo.pk}, status=202)


def inline(request):
    """POST /photos/ doing the thumbnail in the request: what we avoid."""
    photo = _validate_and_save(request)
    services.make_thumbnail(photo.pk)
    return JsonResponse({"id": photo.pk}, status=201)


def _validate_and_save(request):
    """What the project's view does before it enqueues."""
    form = PhotoForm(request.POST, request.FILES)
    if not form.is_valid():
        raise AssertionError(f"benchmark upload rejected: {form.errors.as_json()}")
    with transaction.atomic():
        return Photo.objects.create(
            owner=request.user, image=form.cleaned_data["image"]
        )


# The project's own URLs (POST /photos/ is the view under test), plus two.
urlpatterns = [
    path("bench/save-only/", save_only),
    path("bench/inline/", inline),
    *project_urls.urlpatterns,
]
