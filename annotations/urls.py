"""Annotation pages, mounted at /annotate/."""

from django.urls import path

from annotations import views

app_name = "annotations"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("campaigns/new/", views.campaign_new, name="campaign_new"),
    path("campaigns/<int:campaign_id>/", views.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:campaign_id>/edit/", views.campaign_edit, name="campaign_edit"),
    path("campaigns/<int:campaign_id>/open/", views.campaign_open_view, name="campaign_open"),
    path("campaigns/<int:campaign_id>/close/", views.campaign_close_view, name="campaign_close"),
    path(
        "campaigns/<int:campaign_id>/flags/<int:flag_id>/resolve/",
        views.flag_resolve_view,
        name="flag_resolve",
    ),
    path(
        "campaigns/<int:campaign_id>/items/<int:item_id>/identity/", views.item_identity, name="item_identity"
    ),
    path("campaigns/<int:campaign_id>/start/", views.session_new, name="session_new"),
    path("campaigns/<int:campaign_id>/label/", views.label, name="label"),
    path("campaigns/<int:campaign_id>/items/<int:item_id>/label/", views.label_create, name="label_create"),
    path("campaigns/<int:campaign_id>/items/<int:item_id>/skip/", views.skip, name="skip"),
    path("campaigns/<int:campaign_id>/items/<int:item_id>/flag/", views.flag, name="flag"),
    path("campaigns/<int:campaign_id>/undo/", views.label_undo, name="label_undo"),
    path(
        "campaigns/<int:campaign_id>/labels/<int:label_id>/correct/",
        views.label_correct,
        name="label_correct",
    ),
    path("campaigns/<int:campaign_id>/mine/", views.my_labels, name="my_labels"),
    path("labels/<int:label_id>/edit/", views.label_change, name="label_change"),
    path("adjudication/", views.adjudication_queue, name="adjudication_queue"),
    path("adjudication/<int:item_id>/", views.adjudication_item, name="adjudication_item"),
    path("guidelines/<int:guideline_id>/", views.guideline_detail, name="guideline_detail"),
    path("import/", views.annotation_import, name="import"),
]
