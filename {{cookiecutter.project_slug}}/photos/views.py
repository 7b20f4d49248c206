"""Accept an upload, store it and answer at once; the worker makes the thumbnail."""

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


class ThumbnailView(OwnedJobMixin, BaseDetailView):
    """Serve the thumbnail to its owner only; media files are not public."""

    model = Photo

    def render_to_response(self, context):
        if not self.object.thumbnail:
            raise Http404("No thumbnail yet.")
        return FileResponse(self.object.thumbnail.open("rb"), content_type="image/webp")
