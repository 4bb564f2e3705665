"""Data access pages, mounted at /access/."""

from django.urls import path

from access import views

app_name = "access"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("profile/", views.profile, name="profile"),
    path("releases/<int:release_id>/request/", views.request_new, name="request_new"),
    path("requests/<int:request_id>/", views.request_detail, name="request_detail"),
    path("requests/<int:request_id>/renew/", views.request_renew, name="request_renew"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:token_id>/revoke/", views.token_revoke, name="token_revoke"),
    path("review/", views.review_queue, name="review_queue"),
    path("review/credentials/<int:profile_id>/", views.credential_review, name="credential_review"),
    path("review/requests/<int:request_id>/", views.request_review, name="request_review"),
    path("review/releases/<int:release_id>/report/", views.access_report, name="access_report"),
]
