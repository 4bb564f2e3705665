from django.urls import path

from judging import views

app_name = "judging"

urlpatterns = [
    path("", views.index, name="index"),
    path("templates/new/", views.template_new, name="template_new"),
    path("new/", views.judge_new, name="judge_new"),
    path("runs/new/", views.run_new, name="run_new"),
    path("runs/<int:run_id>/", views.run_detail, name="run_detail"),
    path("runs/<int:run_id>/retry-failed/", views.run_retry_failed, name="run_retry_failed"),
    path("runs/<int:run_id>/pause/", views.run_action, {"action": "pause"}, name="run_pause"),
    path("runs/<int:run_id>/resume/", views.run_action, {"action": "resume"}, name="run_resume"),
    path("runs/<int:run_id>/cancel/", views.run_action, {"action": "cancel"}, name="run_cancel"),
    path("runs/<int:run_id>/plan/", views.run_plan, name="run_plan"),
    path("imports/", views.imports, name="imports"),
    path("audit/", views.audit, name="audit"),
    path("audit/thresholds/", views.threshold_set, name="threshold_set"),
    path("audit/trust/", views.trust_grant, name="trust_grant"),
    path("audit/disagreements/", views.disagreements_send, name="disagreements_send"),
    path("trust/<int:trust_id>/revoke/", views.trust_revoke, name="trust_revoke"),
]
