"""Scoring pages, mounted at /scores/."""

from django.urls import path

from scoring.views import agreement, drilldowns, reports, scores

app_name = "scoring"

urlpatterns = [
    path("", scores.index, name="index"),
    path("campaigns/<int:campaign_id>/", scores.leaderboard, name="leaderboard"),
    path("campaigns/<int:campaign_id>/heatmap/", scores.heatmap, name="heatmap"),
    path("campaigns/<int:campaign_id>/compare/", scores.compare, name="compare"),
    path("campaigns/<int:campaign_id>/rows/", drilldowns.rows, name="rows"),
    path("campaigns/<int:campaign_id>/agreement/", agreement.agreement, name="agreement"),
    path("campaigns/<int:campaign_id>/agreement/rows/", drilldowns.agreement_rows, name="agreement_rows"),
    path("campaigns/<int:campaign_id>/agreement/threshold/", agreement.threshold_set, name="threshold_set"),
    path("campaigns/<int:campaign_id>/mine/", agreement.own_agreement, name="own_agreement"),
    path("campaigns/<int:campaign_id>/reports/", reports.report_list, name="report_list"),
    path("campaigns/<int:campaign_id>/reports/new/", reports.report_new, name="report_new"),
    path("reports/<int:report_id>/", reports.report_detail, name="report_detail"),
    path("reports/<int:report_id>/report.<str:file_format>", reports.report_download, name="report_download"),
    path("reports/<int:report_id>/tables/<slug:name>.csv", reports.report_table, name="report_table"),
]
