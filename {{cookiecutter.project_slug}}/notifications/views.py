"""Queue a notification and report on it; the sending happens in the worker."""

from django.db import transaction
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from core.views import accepted, rejected

from . import services, tasks
from .forms import NotificationForm

FORM_TEMPLATE = "notifications/form.html"


@require_http_methods(["GET", "POST"])
def create(request):
    if request.method == "GET":
        return render(request, FORM_TEMPLATE, {"form": NotificationForm()})
    form = NotificationForm(request.POST)
    if not form.is_valid():
        return rejected(request, form, FORM_TEMPLATE)
    with transaction.atomic():
        notification = services.create_notification(
            owner=request.user, **form.cleaned_data
        )
        tasks.enqueue_delivery(notification.pk)
    return accepted(request, notification)
