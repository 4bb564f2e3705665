"""Which campaigns and reports a user may open for scores and agreement: the querysets twinned
with ``accounts.policy``'s predicates."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User
from accounts.policy import can_see_annotator_names, can_view_own_agreement, can_view_scores
from annotations.models import Campaign, CampaignStatus
from annotations.selectors import campaign_list_for_user
from scoring.models import AnnotatorFlagThreshold, Report


def campaign_list_for_scores(*, user: User) -> QuerySet[Campaign]:
    """Campaigns whose dashboards ``user`` may open: the queryset twin of ``can_view_scores`` with
    the annotation app's campaign visibility (maintainers: all; adjudicators: all but drafts)."""
    if not can_view_scores(user):
        return Campaign.objects.none()
    return campaign_list_for_user(user=user)


def campaign_get_for_scores(*, user: User, campaign_id: int) -> Campaign:
    return campaign_list_for_scores(user=user).select_related("rubric", "guideline").get(pk=campaign_id)


def campaign_list_for_own_agreement(*, user: User) -> QuerySet[Campaign]:
    """Closed campaigns whose pool holds ``user``: the twin of ``can_view_own_agreement``."""
    if not can_view_own_agreement(user):
        return Campaign.objects.none()
    return Campaign.objects.filter(annotators=user, status=CampaignStatus.CLOSED)


def campaign_get_for_own_agreement(*, user: User, campaign_id: int) -> Campaign:
    return (
        campaign_list_for_own_agreement(user=user).select_related("rubric", "guideline").get(pk=campaign_id)
    )


def report_list_for_user(*, user: User, campaign: Campaign | None = None) -> QuerySet[Report]:
    reports = Report.objects.filter(campaign__in=campaign_list_for_scores(user=user).values("pk"))
    if campaign is not None:
        reports = reports.filter(campaign=campaign)
    return reports.select_related("campaign", "created_by")


def report_get_for_user(*, user: User, report_id: int) -> Report:
    return report_list_for_user(user=user).get(pk=report_id)


def threshold_for(*, campaign: Campaign) -> AnnotatorFlagThreshold | None:
    return AnnotatorFlagThreshold.objects.filter(campaign=campaign).select_related("set_by").first()


def response_links_allowed(*, user: User) -> bool:
    """Maintainers may open a response (with its model identity) from a drill-down row."""
    return can_see_annotator_names(user)
