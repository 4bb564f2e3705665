"""Forms of the judging pages; every write goes through a service."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.db.models import QuerySet

from annotations.models import Campaign
from evaluations.models import CollectionRun, Endpoint
from judging.models import Judge, JudgeTemplate
from judging.parsers import AUDIT_FIELDS, PARSERS

FIELD_CHOICES = [(name, spec.label) for name, spec in AUDIT_FIELDS.items()]


def _model_field(form: forms.BaseForm, name: str) -> forms.ModelChoiceField:
    """The declared model choice field ``name`` of ``form`` (``form.fields`` holds plain ``Field``s)."""
    return cast(forms.ModelChoiceField, form.fields[name])


class TemplateForm(forms.Form):
    slug = forms.SlugField(
        max_length=60, help_text="A new slug starts at version 1; an existing one gets its next version."
    )
    title = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    system_prompt = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 3}))
    prompt = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 18, "class": "mono"}),
        help_text="{{query}} (at most once) and {{response}} (exactly once) become fenced, escaped blocks.",
    )
    parser = forms.ChoiceField(choices=[(name, info.label) for name, info in PARSERS.items()])
    # A declared field: Django's metaclass moves it into ``base_fields``, so ``BaseForm.fields`` stays.
    fields = forms.MultipleChoiceField(  # type: ignore[assignment]
        choices=FIELD_CHOICES, widget=forms.CheckboxSelectMultiple
    )
    preview_response = forms.IntegerField(required=False, min_value=1, label="Preview on response id")
    preview_output = forms.CharField(
        required=False,
        strip=False,
        label="Sample judge output",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What the judge might answer: the preview shows what the parser makes of it.",
    )


class JudgeForm(forms.Form):
    slug = forms.SlugField(max_length=80)
    name = forms.CharField(max_length=160)
    endpoint: forms.ModelChoiceField[Endpoint] = forms.ModelChoiceField(queryset=None)
    template: forms.ModelChoiceField[JudgeTemplate] = forms.ModelChoiceField(
        queryset=None, help_text="A template version."
    )
    temperature = forms.FloatField(required=False, initial=0.0, min_value=0, max_value=2)
    seed = forms.IntegerField(required=False)
    max_tokens = forms.IntegerField(required=False, min_value=1)
    samples = forms.IntegerField(initial=1, min_value=1, max_value=15)

    def __init__(
        self,
        *args: Any,
        endpoints: QuerySet[Endpoint],
        templates: QuerySet[JudgeTemplate],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        _model_field(self, "endpoint").queryset = endpoints
        _model_field(self, "template").queryset = templates


class JudgeRunForm(forms.Form):
    judge: forms.ModelChoiceField[Judge] = forms.ModelChoiceField(queryset=None)
    collection_run: forms.ModelChoiceField[CollectionRun] = forms.ModelChoiceField(
        queryset=None, required=False
    )
    campaign: forms.ModelChoiceField[Campaign] = forms.ModelChoiceField(
        queryset=None, required=False, label="or a campaign's items"
    )
    concurrency = forms.IntegerField(initial=64, min_value=1, max_value=512)

    def __init__(
        self,
        *args: Any,
        judges: QuerySet[Judge],
        runs: QuerySet[CollectionRun],
        campaigns: QuerySet[Campaign],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        _model_field(self, "judge").queryset = judges
        _model_field(self, "collection_run").queryset = runs
        _model_field(self, "campaign").queryset = campaigns


class ImportForm(forms.Form):
    file = forms.FileField()
    format = forms.ChoiceField(choices=[("csv", "CSV"), ("jsonl", "JSONL")])


class ThresholdForm(forms.Form):
    field = forms.ChoiceField(choices=FIELD_CHOICES)
    min_kappa = forms.FloatField(min_value=-1, max_value=1, initial=0.7)
    max_abs_bias = forms.FloatField(min_value=0, max_value=1, initial=0.05)
    recall_class = forms.CharField(
        required=False, help_text="A value of the field (true/false, a class name, a point)."
    )
    min_recall = forms.FloatField(required=False, min_value=0, max_value=1)
    min_items = forms.IntegerField(min_value=1, initial=30)
