from django.urls import path

from . import views

app_name = "photos"
urlpatterns = [
    path("", views.create, name="create"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/status/", views.photo_status, name="status"),
    path("<int:pk>/thumbnail/", views.thumbnail, name="thumbnail"),
]
