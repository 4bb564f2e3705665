"""The staff audit page, mounted at /audit/."""

from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("", views.event_page, name="events"),
    path("export.csv", views.event_export, name="export"),
]
