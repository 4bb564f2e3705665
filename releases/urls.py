"""Release pages, mounted at /releases/."""

from django.urls import path

from releases import views

app_name = "releases"

urlpatterns = [
    path("", views.release_list, name="list"),
    path("new/", views.release_new, name="new"),
    path("<int:release_id>/", views.release_detail, name="detail"),
    path("<int:release_id>/progress/", views.release_progress, name="progress"),
    path("<int:release_id>/publish/", views.release_publish, name="publish"),
    path("<int:release_id>/preview/<slug:table>/", views.table_preview, name="preview"),
    path("<int:release_id>/files/<path:name>", views.file_download, name="file"),
]
