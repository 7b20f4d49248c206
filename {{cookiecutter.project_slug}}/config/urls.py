"""URL configuration: pages and JSON on the same URLs (see core/views.py)."""

from django.contrib import admin
from django.urls import include, path

from core import accounts
from core.health import healthz
from core.views import home

urlpatterns = [
    path("", home, name="home"),
    path("healthz/", healthz, name="healthz"),  # probes (core/health.py)
    # Throttled, and the reset mail sent by the worker (core/accounts.py).
    path("accounts/login/", accounts.LoginView.as_view(), name="login"),
    path(
        "accounts/password_reset/",
        accounts.PasswordResetView.as_view(),
        name="password_reset",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("notifications/", include("notifications.urls")),
    path("photos/", include("photos.urls")),
]
