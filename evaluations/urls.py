from django.urls import path

from evaluations import views

app_name = "evaluations"

urlpatterns = [
    path("", views.run_list, name="run_list"),
    path("registry/", views.registry, name="registry"),
    path("registry/endpoints/new/", views.endpoint_create, name="endpoint_create"),
    path("registry/pipelines/new/", views.pipeline_create, name="pipeline_create"),
    path("runs/new/", views.run_create, name="run_create"),
    path("runs/<int:run_id>/", views.run_detail, name="run_detail"),
    path("runs/<int:run_id>/start/", views.run_start, name="run_start"),
    path("runs/<int:run_id>/pause/", views.run_pause, name="run_pause"),
    path("runs/<int:run_id>/resume/", views.run_resume, name="run_resume"),
    path("runs/<int:run_id>/cancel/", views.run_cancel, name="run_cancel"),
    path("runs/<int:run_id>/retry-failed/", views.run_retry_failed, name="run_retry_failed"),
    path("runs/<int:run_id>/responses/", views.response_list, name="response_list"),
    path("runs/<int:run_id>/responses/<int:response_id>/", views.response_detail, name="response_detail"),
    path("runs/<int:run_id>/export.<str:file_format>", views.response_export, name="response_export"),
]
