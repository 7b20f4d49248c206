from django.urls import path

from core.views import JobDetailView, JobStatusView

from . import views
from .models import Photo

app_name = "photos"
urlpatterns = [
    path("", views.create, name="create"),
    path(
        "<int:pk>/",
        JobDetailView.as_view(model=Photo, template_name="photos/detail.html"),
        name="detail",
    ),
    path("<int:pk>/status/", JobStatusView.as_view(model=Photo), name="status"),
    path("<int:pk>/image/", views.PhotoFileView.as_view(), name="image"),
    path(
        "<int:pk>/thumbnail/",
        views.PhotoFileView.as_view(field="thumbnail"),
        name="thumbnail",
    ),
]
