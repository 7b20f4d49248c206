"""URL configuration: pages and JSON on the same URLs (see core/views.py)."""

from django.contrib import admin
from django.urls import include, path

from core.views import home

urlpatterns = [
    path("", home, name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("notifications/", include("notifications.urls")),
    path("photos/", include("photos.urls")),
]
