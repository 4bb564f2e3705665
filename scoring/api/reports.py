"""Frozen campaign reports through the API: list, read (with every table), and make one."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.http import request_user
from annotations.models import Campaign
from scoring.api.base import ManageScores, ViewScores, drf_error
from scoring.models import Report
from scoring.selectors.campaigns import campaign_get_for_scores, report_list_for_user
from scoring.serializers import ReportCreateSerializer, ReportDetailSerializer, ReportSerializer
from scoring.services import report_create


class ScoreReportViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Frozen campaign reports: list, read (with every table), and make one (maintainers)."""

    lookup_value_regex = r"\d+"

    def get_permissions(self) -> list[BasePermission]:
        return [ManageScores()] if self.action == "create" else [ViewScores()]

    def get_queryset(self) -> QuerySet[Report]:
        if getattr(self, "swagger_fake_view", False):
            return Report.objects.none()
        return report_list_for_user(user=request_user(self.request))

    def get_serializer_class(self) -> type:
        return ReportDetailSerializer if self.action == "retrieve" else ReportSerializer

    @extend_schema(request=ReportCreateSerializer, responses={201: ReportSerializer})
    def create(self, request: Request) -> Response:
        payload = ReportCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        user = request_user(request)
        try:
            campaign = campaign_get_for_scores(user=user, campaign_id=data.pop("campaign"))
        except Campaign.DoesNotExist as exc:
            raise ValidationError({"campaign": "No such campaign."}) from exc
        try:
            report = report_create(campaign=campaign, actor=user, **data)
        except DjangoValidationError as error:
            raise drf_error(error) from error
        return Response(ReportSerializer(report).data, status=status.HTTP_201_CREATED)
