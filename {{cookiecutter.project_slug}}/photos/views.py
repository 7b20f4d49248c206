"""Accept an upload, store it and answer at once; the worker makes the thumbnail."""

import mimetypes

from django.db import transaction
from django.http import FileResponse, Http404
from django.shortcuts import render
from django.views.decorators.http import require_http_methods
from django.views.generic.detail import BaseDetailView

from core.views import OwnedJobMixin, accepted, rejected

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


class PhotoFileView(OwnedJobMixin, BaseDetailView):
    """Stream one of a photo's files to its owner only (another user gets
    404): uploads are not public, on the disk or in the bucket."""

    model = Photo
    field = "image"

    def render_to_response(self, context):
        file = getattr(self.object, self.field)
        if not file:
            raise Http404("No such file yet.")
        # The name's extension is the one PhotoForm gave for the format it
        # found (photos/models.py); the thumbnail is always WEBP.
        content_type = mimetypes.guess_type(file.name)[0]
        return FileResponse(
            file.open("rb"), content_type=content_type or "application/octet-stream"
        )
