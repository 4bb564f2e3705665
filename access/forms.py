"""Forms of the access pages; the services validate again (a form is a courtesy, not the check)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from django import forms
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from access.models import ResearcherProfile
from releases.models import Release


class ProfileForm(forms.ModelForm):
    institutional_page = forms.URLField(
        max_length=300,
        assume_scheme="https",
        help_text="A page at your institution that names you (staff list, lab page).",
    )

    class Meta:
        model = ResearcherProfile
        fields = [
            "full_name",
            "institution",
            "position",
            "orcid",
            "institutional_page",
            "reference_name",
            "reference_email",
            "research_area",
        ]
        widgets = {"research_area": forms.Textarea(attrs={"rows": 4})}


class RequestForm(forms.Form):
    purpose = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=(
            "What you will study with the data, and why you need the restricted tier "
            "(40 characters at least)."
        ),
    )
    agreement_version = forms.IntegerField(widget=forms.HiddenInput)
    agreement_sha256 = forms.CharField(widget=forms.HiddenInput, max_length=64)
    accept = forms.BooleanField(label="I have read the data use agreement above and agree to it.")


class DecisionForm(forms.Form):
    DECISIONS = [("approve", "Approve"), ("reject", "Reject"), ("revoke", "Revoke")]
    decision = forms.ChoiceField(choices=DECISIONS)
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Required to reject or revoke; sent to the researcher.",
    )
    expires_on = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="For an approval: the last day of access (default: 12 months).",
    )

    def expires_at(self) -> datetime | None:
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        return timezone.make_aware(datetime.combine(day, datetime.max.time()))


class CredentialDecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("accept", "Accept"), ("reject", "Reject"), ("suspend", "Suspend")])
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), help_text="Required; sent to the researcher."
    )


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Where the token will be used, e.g. 'lab workstation'.")
    releases: forms.ModelMultipleChoiceField[Release] = forms.ModelMultipleChoiceField(
        queryset=None, widget=forms.CheckboxSelectMultiple
    )
    days = forms.IntegerField(
        min_value=1,
        max_value=settings.RESEARCHER_TOKEN_MAX_DAYS,
        initial=settings.RESEARCHER_TOKEN_DEFAULT_DAYS,
    )

    def __init__(self, *args: Any, releases: QuerySet[Release] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelMultipleChoiceField, self.fields["releases"]).queryset = releases


DEFAULT_GRANT = timedelta(days=settings.ACCESS_GRANT_DEFAULT_DAYS)
