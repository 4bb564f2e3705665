"""Forms for registering endpoints and pipelines and creating collection runs."""

from typing import Any

from django import forms
from django.db.models import QuerySet

from evaluations.models import Endpoint, EndpointFamily, Pipeline
from querybank.models import Category, Query


class EndpointForm(forms.ModelForm):
    class Meta:
        model = Endpoint
        fields = [
            "slug", "name", "kind", "base_url", "model_name", "family", "guard_format", "base_model",
            "api_key_env", "default_parameters", "max_concurrency", "requests_per_minute",
            "tokens_per_minute", "timeout_seconds", "price_input_per_million", "price_output_per_million",
            "is_active",
        ]


class PipelineForm(forms.ModelForm):
    class Meta:
        model = Pipeline
        fields = ["slug", "name", "input_guard", "model", "output_guard"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].queryset = Endpoint.objects.exclude(family=EndpointFamily.GUARDRAIL)


class RunForm(forms.Form):
    SELECTIONS = [
        ("all", "Whole query bank (active queries)"),
        ("category", "One category"),
        ("source", "One source"),
        ("list", "A list of external ids"),
    ]
    name = forms.CharField(max_length=200)
    selection = forms.ChoiceField(choices=SELECTIONS, initial="all", widget=forms.RadioSelect)
    category = forms.ModelChoiceField(queryset=Category.objects.select_related("taxonomy"), required=False,
                                      to_field_name="slug")
    source = forms.CharField(required=False, max_length=60)
    external_ids = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                   help_text="One external id per line (or comma-separated).")
    endpoints = forms.ModelMultipleChoiceField(
        queryset=Endpoint.objects.filter(is_active=True).exclude(family=EndpointFamily.GUARDRAIL),
        required=False, widget=forms.CheckboxSelectMultiple,
    )
    pipelines = forms.ModelMultipleChoiceField(
        queryset=Pipeline.objects.all(), required=False, widget=forms.CheckboxSelectMultiple
    )
    samples = forms.IntegerField(min_value=1, max_value=100, initial=1)
    temperature = forms.FloatField(required=False, min_value=0, max_value=2)
    top_p = forms.FloatField(required=False, min_value=0, max_value=1)
    max_tokens = forms.IntegerField(required=False, min_value=1)
    seed = forms.IntegerField(required=False)
    system_prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    concurrency = forms.IntegerField(min_value=1, max_value=1024, initial=64)
    max_attempts = forms.IntegerField(min_value=1, max_value=20, initial=5)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("endpoints") and not data.get("pipelines"):
            raise forms.ValidationError("Choose at least one endpoint or pipeline.")
        kind = data.get("selection")
        if kind == "category" and not data.get("category"):
            self.add_error("category", "Choose the category.")
        if kind == "source" and not data.get("source"):
            self.add_error("source", "Name the source.")
        if kind == "list":
            ids = [part.strip() for chunk in data.get("external_ids", "").splitlines() for part in chunk.split(",")]
            ids = [i for i in ids if i]
            if not ids:
                self.add_error("external_ids", "List at least one external id.")
            data["external_id_list"] = ids
        return data

    def selected_queries(self, queries: QuerySet[Query]) -> tuple[QuerySet[Query], dict[str, Any]]:
        data = self.cleaned_data
        kind = data["selection"]
        queries = queries.filter(status="active")
        if kind == "category":
            return queries.filter(category=data["category"]), {"kind": kind, "category": data["category"].slug}
        if kind == "source":
            return queries.filter(source=data["source"]), {"kind": kind, "source": data["source"]}
        if kind == "list":
            ids = data["external_id_list"]
            return queries.filter(external_id__in=ids), {"kind": kind, "external_ids": ids}
        return queries, {"kind": "all"}

    def targets(self) -> list[Endpoint | Pipeline]:
        return [*self.cleaned_data["endpoints"], *self.cleaned_data["pipelines"]]

    def parameters(self) -> dict[str, Any]:
        return {k: self.cleaned_data.get(k) for k in ("temperature", "top_p", "max_tokens", "seed", "system_prompt")}
