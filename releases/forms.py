"""The release cut form: campaigns, changelog, datasheet sections, public sample, reviewers."""

from __future__ import annotations

from typing import Any, cast

from django import forms

from accounts.models import User
from accounts.roles import Role
from annotations.models import Campaign, CampaignStatus
from releases.models.releases import DATASHEET_SECTIONS


def _model_field(form: forms.BaseForm, name: str) -> forms.ModelChoiceField:
    """The declared model choice field ``name`` of ``form`` (``form.fields`` holds plain ``Field``s)."""
    return cast(forms.ModelChoiceField, form.fields[name])


class ReleaseCutForm(forms.Form):
    slug = forms.SlugField(
        max_length=80, help_text="The release's name in file paths; versions count up per name."
    )
    title = forms.CharField(max_length=200)
    campaigns = forms.ModelMultipleChoiceField(
        queryset=Campaign.objects.none(), widget=forms.CheckboxSelectMultiple
    )
    changelog = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}))
    sample_query_ids = forms.CharField(
        required=False,
        help_text="Query ids for the public sample, separated by commas (the data committee approves them).",
    )
    reviewers = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Delegated reviewers who may decide this release's access requests beside the committee.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _model_field(self, "campaigns").queryset = Campaign.objects.filter(
            status=CampaignStatus.CLOSED
        ).order_by("-closed_at")
        _model_field(self, "reviewers").queryset = User.objects.filter(
            is_active=True, groups__name__in=[Role.ADJUDICATOR.value, Role.MAINTAINER.value]
        ).distinct()
        for key, question in DATASHEET_SECTIONS:
            self.fields[f"datasheet_{key}"] = forms.CharField(
                label=question, widget=forms.Textarea(attrs={"rows": 3})
            )

    def clean_sample_query_ids(self) -> list[int]:
        raw = self.cleaned_data["sample_query_ids"] or ""
        try:
            return [int(part) for part in raw.replace(" ", "").split(",") if part]
        except ValueError as exc:
            raise forms.ValidationError("Query ids are whole numbers separated by commas.") from exc

    def datasheet(self) -> dict[str, str]:
        return {key: self.cleaned_data[f"datasheet_{key}"] for key, _ in DATASHEET_SECTIONS}
