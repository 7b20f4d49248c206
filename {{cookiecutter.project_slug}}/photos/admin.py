from django.contrib import admin

from .models import Photo


@admin.register(Photo)
class PhotoAdmin(admin.ModelAdmin):
    list_display = ["pk", "owner", "status", "width", "height", "created_at"]
    list_filter = ["status"]
    readonly_fields = ["status", "error", "thumbnail", "width", "height"]
