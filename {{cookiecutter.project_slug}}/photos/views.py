"""Accept an upload, store it and answer at once; the worker makes the thumbnail."""

from django.db import transaction
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_http_methods

from core.views import accepted, rejected, status

from . import tasks
from .forms import PhotoForm
from .models import Photo

FORM_TEMPLATE = "photos/form.html"


@require_http_methods(["GET", "POST"])
def create(request):
    if request.method == "GET":
        return render(request, FORM_TEMPLATE, {"form": PhotoForm()})
    form = PhotoForm(request.POST, request.FILES)
    if not form.is_valid():
        return rejected(request, form, FORM_TEMPLATE)
    with transaction.atomic():
        # The file goes to default storage here; the task gets only the id.
        photo = Photo.objects.create(
            owner=request.user, image=form.cleaned_data["image"]
        )
        tasks.enqueue_thumbnail(photo.pk)
    return accepted(request, photo)


@require_GET
def detail(request, pk):
    photo = get_object_or_404(Photo, pk=pk, owner=request.user)
    return render(request, "photos/detail.html", {"photo": photo})


@require_GET
def photo_status(request, pk):
    return status(get_object_or_404(Photo, pk=pk, owner=request.user))


@require_GET
def thumbnail(request, pk):
    """Serve the thumbnail to its owner only; media files are not public."""
    photo = get_object_or_404(Photo, pk=pk, owner=request.user)
    if not photo.thumbnail:
        raise Http404("No thumbnail yet.")
    return FileResponse(photo.thumbnail.open("rb"), content_type="image/webp")
