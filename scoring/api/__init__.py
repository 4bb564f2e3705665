"""The scores and agreement API: the same rules, selectors and figures as the pages; one module per
page family (``scores``, ``drilldowns``, ``agreement``, ``reports``), their serializers in
``scoring.serializers``.

``register(router)`` adds the viewsets to the project's router (medharm_web/api_urls.py).
"""

from __future__ import annotations

from rest_framework import mixins
from rest_framework.permissions import BasePermission
from rest_framework.routers import BaseRouter

from accounts.api_permissions import Authenticated
from scoring.api.agreement import AgreementActions
from scoring.api.base import ManageScores, ViewIdentityRows, ViewScores
from scoring.api.drilldowns import DrillDownActions
from scoring.api.reports import ScoreReportViewSet
from scoring.api.scores import ScoreActions


class ScoreCampaignViewSet(mixins.ListModelMixin, ScoreActions, DrillDownActions, AgreementActions):
    """Scores and agreement of the campaigns the caller may see (maintainers and adjudicators).
    ``mine`` is the clinician's own agreement with gold, for closed campaigns of their pool."""

    def get_permissions(self) -> list[BasePermission]:
        if self.action == "threshold":
            return [ManageScores()]
        if self.action == "mine":
            return [Authenticated()]
        if self.action == "rows":
            return [ViewIdentityRows()]
        return [ViewScores()]


def register(router: BaseRouter) -> None:
    """Add the scoring API to the project's router."""
    router.register("score-campaigns", ScoreCampaignViewSet, basename="score-campaign")
    router.register("score-reports", ScoreReportViewSet, basename="score-report")
