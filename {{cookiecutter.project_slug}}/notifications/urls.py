from django.urls import path

from core.views import JobDetailView, JobStatusView

from . import views
from .models import Notification

app_name = "notifications"
urlpatterns = [
    path("", views.create, name="create"),
    path(
        "<int:pk>/",
        JobDetailView.as_view(
            model=Notification, template_name="notifications/detail.html"
        ),
        name="detail",
    ),
    path("<int:pk>/status/", JobStatusView.as_view(model=Notification), name="status"),
]
