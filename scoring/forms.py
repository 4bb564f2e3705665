"""Forms of the scoring pages: the annotator flag threshold and a new report."""

from __future__ import annotations

from typing import Any, cast

from django import forms

from medharm_stats import DEFAULT_RESAMPLES, DEFAULT_SEED
from scoring.models import ThresholdStatistic
from scoring.resolution import SOURCES
from scoring.services import MAX_RESAMPLES


class ThresholdForm(forms.Form):
    field_name = forms.ChoiceField(label="Field compared with gold", required=False)
    statistic = forms.ChoiceField(choices=ThresholdStatistic.choices, initial=ThresholdStatistic.PERCENT)
    minimum = forms.FloatField(
        min_value=-1.0,
        max_value=1.0,
        initial=0.7,
        help_text="Annotators below this figure are flagged (percent agreement: 0 to 1; kappa: -1 to 1).",
    )
    min_items = forms.IntegerField(
        min_value=1,
        initial=10,
        label="Minimum gold items",
        help_text="Annotators with fewer gold-labelled items are not judged yet.",
    )

    def __init__(self, *args: Any, fields: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["field_name"]).choices = [("", "The primary field"), *fields]


class ReportForm(forms.Form):
    label_source = forms.ChoiceField(
        choices=[(s.value, s.label) for s in SOURCES if s.available], initial="gold", label="Label source"
    )
    seed = forms.IntegerField(min_value=0, max_value=2**63 - 1, initial=DEFAULT_SEED, label="Random seed")
    resamples = forms.IntegerField(
        min_value=1, max_value=MAX_RESAMPLES, initial=DEFAULT_RESAMPLES, label="Bootstrap resamples"
    )
