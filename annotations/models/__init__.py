"""Annotation models: rubrics and guidelines, campaigns and their items, labels and adjudications."""

from annotations.models.campaigns import (
    AnnotationSession,
    Campaign,
    CampaignItem,
    CampaignStatus,
    GoldSource,
    Lease,
)
from annotations.models.labels import Adjudication, Flag, FlagReason, Label, Skip, SkipReason
from annotations.models.rubrics import (
    FieldKind,
    Guideline,
    OptionsSource,
    QueryAttribute,
    Rubric,
    RubricField,
    RubricTarget,
)

__all__ = [
    "Adjudication",
    "AnnotationSession",
    "Campaign",
    "CampaignItem",
    "CampaignStatus",
    "FieldKind",
    "Flag",
    "FlagReason",
    "GoldSource",
    "Guideline",
    "Label",
    "Lease",
    "OptionsSource",
    "QueryAttribute",
    "Rubric",
    "RubricField",
    "RubricTarget",
    "Skip",
    "SkipReason",
]
