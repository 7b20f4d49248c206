"""Responses shared by the views that queue work.

API clients (``Accept: */*`` or JSON) get JSON; browsers get pages. One URL
serves both, so the HTML forms need no JavaScript to work.
"""

from django.http import JsonResponse
from django.shortcuts import redirect, render

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


def status(job):
    return JsonResponse(job.status_payload())


def home(request):
    return render(
        request,
        "home.html",
        {
            "photos": Photo.objects.filter(owner=request.user)[:10],
            "notifications": Notification.objects.filter(owner=request.user)[:10],
        },
    )
