"""Scoring pages, mounted at /scores/."""

from django.urls import path

from scoring import views

app_name = "scoring"

urlpatterns = [
    path("", views.index, name="index"),
    path("campaigns/<int:campaign_id>/", views.leaderboard, name="leaderboard"),
    path("campaigns/<int:campaign_id>/heatmap/", views.heatmap, name="heatmap"),
    path("campaigns/<int:campaign_id>/compare/", views.compare, name="compare"),
    path("campaigns/<int:campaign_id>/rows/", views.rows, name="rows"),
    path("campaigns/<int:campaign_id>/agreement/", views.agreement, name="agreement"),
    path("campaigns/<int:campaign_id>/agreement/rows/", views.agreement_rows, name="agreement_rows"),
    path("campaigns/<int:campaign_id>/agreement/threshold/", views.threshold_set, name="threshold_set"),
    path("campaigns/<int:campaign_id>/mine/", views.own_agreement, name="own_agreement"),
    path("campaigns/<int:campaign_id>/reports/", views.report_list, name="report_list"),
    path("campaigns/<int:campaign_id>/reports/new/", views.report_new, name="report_new"),
    path("reports/<int:report_id>/", views.report_detail, name="report_detail"),
    path("reports/<int:report_id>/report.<str:file_format>", views.report_download, name="report_download"),
    path("reports/<int:report_id>/tables/<slug:name>.csv", views.report_table, name="report_table"),
]
