from django.urls import path

from . import views

app_name = "notifications"
urlpatterns = [
    path("", views.create, name="create"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/status/", views.notification_status, name="status"),
]
