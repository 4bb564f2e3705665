"""What every scores API view shares: the permissions, the label-source parameter, the error shape
of a service's refusal, and the campaign viewset's base (snapshot, label source, cached figures,
the field asked for)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import viewsets
from rest_framework.exceptions import ValidationError

from accounts.api_permissions import rule_permission
from accounts.http import request_user
from annotations.models import Campaign
from scoring.figures.metrics import default_field
from scoring.figures.scores import SourceUnavailableError
from scoring.resolution import SOURCES, source_info
from scoring.selectors.campaigns import campaign_list_for_scores
from scoring.serializers import ScoreCampaignSerializer
from scoring.snapshots import Snapshot

ViewScores = rule_permission("scoring.view_scores")
ManageScores = rule_permission("scoring.manage_scores")
ViewIdentityRows = rule_permission("scoring.view_identity_rows")

SOURCE_PARAM = OpenApiParameter(
    "source",
    str,
    enum=[s.value for s in SOURCES],
    description="Label source (the judge is not available yet).",
)
JSON = OpenApiResponse(response=OpenApiTypes.OBJECT)


def drf_error(error: DjangoValidationError) -> ValidationError:
    return ValidationError(error.message_dict if hasattr(error, "error_dict") else {"detail": error.messages})


class CampaignViewSetBase(viewsets.GenericViewSet):
    """The campaigns the caller may see, and how each action reads one: its snapshot, the label
    source and field it asks for, and its figures cached like the pages'."""

    lookup_value_regex = r"\d+"
    serializer_class = ScoreCampaignSerializer

    def get_queryset(self) -> QuerySet[Campaign]:
        if getattr(self, "swagger_fake_view", False):
            return Campaign.objects.none()
        return campaign_list_for_scores(user=request_user(self.request)).select_related("rubric", "guideline")

    def _snapshot(self) -> Snapshot:
        return Snapshot(campaign=self.get_object(), user=request_user(self.request))

    def _source(self, snap: Snapshot) -> str:
        raw = self.request.query_params.get("source") or "gold"
        try:
            source = source_info(raw).value
        except ValueError as exc:
            raise ValidationError({"source": str(exc)}) from exc
        if snap.campaign.target != "response":
            raise ValidationError(
                {"detail": "Safety scores rate model responses; this campaign labels queries."}
            )
        return source

    def _scored(
        self,
        snap: Snapshot,
        name: str,
        source: str,
        params: dict[str, Any],
        build: Any,
        *,
        rows: bool = False,
    ) -> Any:
        """A figure under ``source``, cached like the pages' (the judge's computed each time)."""

        def compute() -> Any:
            try:
                bundle = snap.bundle(source)
            except SourceUnavailableError as exc:
                raise ValidationError({"source": str(exc)}) from exc
            return build(bundle)

        cached = snap.cached_rows if rows else snap.cached
        return cached(f"api_{name}", compute, {"source": source, **params}, store=source != "judge")

    def _spec(self, snap: Snapshot) -> Any:
        default = snap.cached("default_field", lambda: default_field(snap.data))
        name = self.request.query_params.get("field") or (default.name if default else "")
        specs = {s.name: s for s in snap.cached("categorical_specs", lambda: snap.data.categorical_specs)}
        if name not in specs:
            raise ValidationError({"field": f"One of {', '.join(specs)}."})
        return specs[name]
