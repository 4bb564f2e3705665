"""Read-only admin for releases: they are immutable once cut."""

from django.contrib import admin

from core.admin import ReadOnlyAdmin
from releases.models import Release, ReleaseFile


@admin.register(Release)
class ReleaseAdmin(ReadOnlyAdmin):
    list_display = ("slug", "version", "title", "status", "built_at", "public_approved_at")
    list_filter = ("status",)


@admin.register(ReleaseFile)
class ReleaseFileAdmin(ReadOnlyAdmin):
    list_display = ("release", "tier", "name", "size", "sha256")
    list_filter = ("tier", "file_format")
