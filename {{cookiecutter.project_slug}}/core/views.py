"""Views and responses shared by the apps that queue work.

API clients (``Accept: */*`` or JSON) get JSON; browsers get pages. One URL
serves both, so the HTML forms need no JavaScript to work.
"""

from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.generic import DetailView
from django.views.generic.detail import BaseDetailView

from notifications.models import Notification
from photos.models import Photo


def wants_html(request):
    return request.get_preferred_type(["application/json", "text/html"]) == "text/html"


def accepted(request, job):
    """The work is queued: 202 with where to poll, or the status page."""
    if wants_html(request):
        return redirect(job)
    return JsonResponse({"id": job.pk, "status_url": job.status_url()}, status=202)


def rejected(request, form, template_name):
    """The input is wrong: 400 with one readable sentence, or the form again."""
    if wants_html(request):
        return render(request, template_name, {"form": form}, status=400)
    messages = [message for errors in form.errors.values() for message in errors]
    return JsonResponse({"error": " ".join(messages)}, status=400)


class OwnedJobMixin:
    """Only the requesting user's jobs: anyone else's id is a 404.

    The job row is the authorization, never a task id (core/models.py).
    """

    def get_queryset(self):
        return super().get_queryset().filter(owner=self.request.user)


class JobDetailView(OwnedJobMixin, DetailView):
    """The job's page; it polls the status view (core/static/core/poll.js)."""


class JobStatusView(OwnedJobMixin, BaseDetailView):
    """The job's status as JSON: ``Job.status_payload()``."""

    def render_to_response(self, context):
        return JsonResponse(self.object.status_payload())


def home(request):
    return render(
        request,
        "home.html",
        {
            "photos": Photo.objects.filter(owner=request.user)[:10],
            "notifications": Notification.objects.filter(owner=request.user)[:10],
        },
    )
