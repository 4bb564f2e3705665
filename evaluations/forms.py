"""Forms for registering endpoints and pipelines and creating collection runs."""

from collections.abc import Iterator
from typing import Any

from django import forms
from django.db.models import Count, QuerySet

from evaluations.models import Endpoint, EndpointFamily, Pipeline
from querybank.models import Query, QueryStatus
from querybank.selectors import query_selection

PARAMETERS_PLACEHOLDER = '{"max_tokens": 400}'


class Section:
    """A titled group of fields, rendered as one fieldset."""

    def __init__(self, title: str, description: str, fields: list[forms.BoundField]) -> None:
        self.title = title
        self.description = description
        self.fields = fields

    @property
    def slug(self) -> str:
        return self.title.lower().replace(" ", "-")


class SectionedForm:
    """Mixin: ``SECTIONS = ((title, description, field names), ...)`` → ``form.sections``."""

    SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    WIDE_FIELDS: frozenset[str] = frozenset()  # fields that take a whole row of their section

    def sections(self) -> Iterator[Section]:
        for title, description, names in self.SECTIONS:
            yield Section(title, description, [self[name] for name in names])  # type: ignore[index]


def _endpoint_label(endpoint: Endpoint) -> str:
    return f"{endpoint.name} · {endpoint.model_name}"


class EndpointForm(SectionedForm, forms.ModelForm):
    SECTIONS = (
        ("Name", "How this endpoint appears in runs, exports and the API.", ("name", "slug", "is_active")),
        (
            "Connection",
            "Where requests go. The API key is never stored, shown, logged or exported: name the "
            "environment variable that holds it on the collection workers.",
            ("kind", "timeout_seconds", "base_url", "api_key_env"),
        ),
        (
            "Model",
            "What answers. A guardrail model is used as a classifier inside a pipeline, never as a target "
            "on its own.",
            ("model_name", "family", "guard_format", "base_model", "default_parameters"),
        ),
        (
            "Limits",
            "Per endpoint, shared by every run and pipeline that calls it. The collector backs off on "
            "429 replies and honours Retry-After whatever you set here.",
            ("max_concurrency", "requests_per_minute", "tokens_per_minute"),
        ),
        (
            "Prices",
            "Per million tokens, in dollars, as your provider bills them; a run's cost so far is computed "
            "from these. Leave 0 for local models.",
            ("price_input_per_million", "price_output_per_million"),
        ),
    )
    WIDE_FIELDS = frozenset({"is_active", "base_url", "api_key_env", "default_parameters"})

    base_url = forms.URLField(
        max_length=300,
        assume_scheme="https",
        label="Base URL",
        help_text="The API root, e.g. <code>https://api.openai.com/v1</code> or a local "
        "<code>http://127.0.0.1:8000/v1</code> (vLLM, TGI, Ollama, LM Studio).",
        widget=forms.URLInput(attrs={"placeholder": "https://api.example.com/v1", "class": "mono"}),
    )

    class Meta:
        model = Endpoint
        fields = [
            "name",
            "slug",
            "is_active",
            "kind",
            "base_url",
            "api_key_env",
            "timeout_seconds",
            "model_name",
            "family",
            "guard_format",
            "base_model",
            "default_parameters",
            "max_concurrency",
            "requests_per_minute",
            "tokens_per_minute",
            "price_input_per_million",
            "price_output_per_million",
        ]
        labels = {
            "slug": "Short name",
            "is_active": "Active (offered when creating runs)",
            "kind": "API",
            "api_key_env": "API key environment variable",
            "timeout_seconds": "Timeout per request (seconds)",
            "model_name": "Model name",
            "guard_format": "Guard verdict format",
            "base_model": "Fine-tuned from",
            "default_parameters": "Default generation parameters",
            "max_concurrency": "Requests in flight at most",
            "requests_per_minute": "Requests per minute",
            "tokens_per_minute": "Tokens per minute",
            "price_input_per_million": "Input price per million tokens",
            "price_output_per_million": "Output price per million tokens",
        }
        help_texts = {
            "name": "Shown on run pages and in score tables, e.g. <em>Provider model, 2025-01 snapshot</em>.",
            "slug": "Letters, digits and hyphens; used in exports and the API. Cannot be shared with another "
            "endpoint.",
            "kind": "OpenAI-compatible chat completions covers OpenAI, vLLM, TGI, Ollama and LM Studio.",
            "api_key_env": "For example <code>MEDHARM_KEY_OPENAI</code>: a name starting with "
            "<code>MEDHARM_KEY_</code>, or one the operator lists in "
            "<code>MEDHARM_MODEL_KEY_ENV_NAMES</code>; never a setting of the platform. "
            "Leave empty for servers that need no key. Only this name is saved; the "
            "workers read the key from their environment.",
            "model_name": "Sent as <code>model</code> in every request; the name the server resolves it to "
            "is recorded on each response.",
            "family": "Groups models in the score tables (the paper's general, medical, closed and SFT "
            "models) and marks guardrail models.",
            "guard_format": "Guardrail models only: how to read their verdicts.",
            "base_model": "For a fine-tune: the model it was tuned from, for paired comparisons.",
            "default_parameters": f"A JSON object, e.g. <code>{PARAMETERS_PLACEHOLDER}</code>. A run's own "
            "generation parameters override these.",
            "requests_per_minute": "Leave empty for no limit.",
            "tokens_per_minute": "Leave empty for no limit.",
        }
        widgets = {
            "slug": forms.TextInput(attrs={"placeholder": "e.g. general-model-a", "class": "mono"}),
            "api_key_env": forms.TextInput(
                attrs={
                    "placeholder": "MEDHARM_KEY_OPENAI",
                    "class": "mono",
                    "autocomplete": "off",
                    "spellcheck": "false",
                }
            ),
            "model_name": forms.TextInput(attrs={"class": "mono"}),
            "default_parameters": forms.Textarea(
                attrs={"rows": 3, "class": "mono", "placeholder": PARAMETERS_PLACEHOLDER}
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        base_model = self.fields["base_model"]
        base_model.queryset = Endpoint.objects.exclude(family=EndpointFamily.GUARDRAIL)  # type: ignore[attr-defined]
        base_model.label_from_instance = _endpoint_label  # type: ignore[attr-defined]
        base_model.empty_label = "Not a fine-tune"  # type: ignore[attr-defined]


class PipelineForm(SectionedForm, forms.ModelForm):
    SECTIONS = (
        ("Name", "How this pipeline appears in runs and score tables.", ("name", "slug")),
        (
            "Stages",
            "Input guard → model → output guard. A blocked item is recorded as a block with the guard's "
            "categories and raw output, never as a response text.",
            ("input_guard", "model", "output_guard"),
        ),
    )

    class Meta:
        model = Pipeline
        fields = ["name", "slug", "input_guard", "model", "output_guard"]
        labels = {"slug": "Short name"}
        help_texts = {
            "name": "e.g. <em>General model behind Llama Guard</em>.",
            "slug": "Letters, digits and hyphens; used in exports and the API.",
            "input_guard": "Checks the query before the model sees it. A guardrail endpoint.",
            "model": "The model that answers what the input guard lets through.",
            "output_guard": "Checks the model's reply before it is recorded as a response.",
        }
        widgets = {"slug": forms.TextInput(attrs={"placeholder": "e.g. general-guarded", "class": "mono"})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        guards = Endpoint.objects.filter(family=EndpointFamily.GUARDRAIL, is_active=True)
        for name in ("input_guard", "output_guard"):
            self.fields[name].queryset = guards  # type: ignore[attr-defined]
            self.fields[name].label_from_instance = _endpoint_label  # type: ignore[attr-defined]
            self.fields[name].empty_label = "None"  # type: ignore[attr-defined]
        model = self.fields["model"]
        model.queryset = Endpoint.objects.filter(is_active=True).exclude(family=EndpointFamily.GUARDRAIL)  # type: ignore[attr-defined]
        model.label_from_instance = _endpoint_label  # type: ignore[attr-defined]


def _pipeline_label(pipeline: Pipeline) -> str:
    stages = [pipeline.input_guard, pipeline.model, pipeline.output_guard]
    return f"{pipeline.name} · " + " → ".join(stage.model_name for stage in stages if stage is not None)


class RunForm(SectionedForm, forms.Form):
    """A run's plan. ``queries`` is what the maintainer may read; only its active queries count."""

    SELECTIONS = [
        ("all", "All active queries"),
        ("category", "One category"),
        ("source", "One source"),
        ("list", "A list of external ids"),
    ]
    SECTIONS = (
        (
            "Generation",
            "Snapshotted on the run; empty fields use each endpoint's defaults.",
            ("samples", "temperature", "top_p", "max_tokens", "seed", "system_prompt"),
        ),
        (
            "Execution",
            "How hard the workers push; each endpoint's own limits still apply.",
            ("concurrency", "max_attempts"),
        ),
    )
    WIDE_FIELDS = frozenset({"system_prompt"})

    name = forms.CharField(
        max_length=200, widget=forms.TextInput(attrs={"placeholder": "e.g. Baseline, all models"})
    )
    selection = forms.ChoiceField(
        choices=SELECTIONS, initial="all", widget=forms.RadioSelect, label="Queries"
    )
    category = forms.ChoiceField(required=False, help_text="Active queries in the category.")
    source = forms.ChoiceField(required=False, help_text="Active queries imported from the source.")
    external_ids = forms.CharField(
        required=False,
        label="External ids",
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono", "spellcheck": "false"}),
        help_text="One per line, or separated by commas. Every id must name an active query.",
    )
    endpoints = forms.ModelMultipleChoiceField(
        queryset=Endpoint.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Models",
    )
    pipelines = forms.ModelMultipleChoiceField(
        queryset=Pipeline.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Guardrail pipelines",
    )
    samples = forms.IntegerField(
        min_value=1,
        max_value=100,
        initial=1,
        label="Samples per query",
        help_text="More than one to measure how often a model's answer changes.",
    )
    temperature = forms.FloatField(required=False, min_value=0, max_value=2)
    top_p = forms.FloatField(required=False, min_value=0, max_value=1, label="Top p")
    max_tokens = forms.IntegerField(required=False, min_value=1, label="Max tokens")
    seed = forms.IntegerField(required=False, help_text="Sample <em>i</em> is sent seed + <em>i</em>.")
    system_prompt = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label="System prompt"
    )
    concurrency = forms.IntegerField(
        min_value=1,
        max_value=1024,
        initial=64,
        label="Requests in flight",
        help_text="For the whole run, across its targets.",
    )
    max_attempts = forms.IntegerField(
        min_value=1,
        max_value=20,
        initial=5,
        label="Attempts per item",
        help_text="After the last one an item ends as an error with its reason; “Retry failed items” "
        "can queue it again.",
    )

    def __init__(self, *args: Any, queries: QuerySet[Query], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queries = queries.filter(status=QueryStatus.ACTIVE)
        self.query_total = self.queries.count()
        categories = (
            self.queries.values("category__slug", "category__name", "category__taxonomy__name")
            .annotate(n=Count("id"))
            .order_by("category__taxonomy_id", "category__position", "category__name")
        )
        groups: dict[str, list[tuple[str, str]]] = {}
        for row in categories:
            groups.setdefault(row["category__taxonomy__name"], []).append(
                (row["category__slug"], f"{row['category__name']} ({row['n']})")
            )
        self.fields["category"].choices = [("", "Choose a category"), *groups.items()]  # type: ignore[attr-defined]
        sources = self.queries.values_list("source").annotate(n=Count("id")).order_by("source")
        self.fields["source"].choices = [  # type: ignore[attr-defined]
            ("", "Choose a source"),
            *((source, f"{source} ({n})") for source, n in sources),
        ]
        self.fields["selection"].choices = [  # type: ignore[attr-defined]
            ("all", f"All active queries ({self.query_total})"),
            *self.SELECTIONS[1:],
        ]
        endpoints = self.fields["endpoints"]
        endpoints.queryset = Endpoint.objects.filter(is_active=True).exclude(family=EndpointFamily.GUARDRAIL)  # type: ignore[attr-defined]
        endpoints.label_from_instance = _endpoint_label  # type: ignore[attr-defined]
        pipelines = self.fields["pipelines"]
        pipelines.queryset = Pipeline.objects.select_related("input_guard", "model", "output_guard")  # type: ignore[attr-defined]
        pipelines.label_from_instance = _pipeline_label  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("endpoints") and not data.get("pipelines"):
            raise forms.ValidationError("Choose at least one model or pipeline.")
        kind = data.get("selection")
        if kind == "category" and not data.get("category"):
            self.add_error("category", "Choose the category.")
        if kind == "source" and not data.get("source"):
            self.add_error("source", "Choose the source.")
        if kind == "list":
            lines = data.get("external_ids", "").splitlines()
            ids = [part.strip() for line in lines for part in line.split(",")]
            ids = list(dict.fromkeys(i for i in ids if i))
            if not ids:
                self.add_error("external_ids", "List at least one external id.")
            else:
                known = set(self.queries.filter(external_id__in=ids).values_list("external_id", flat=True))
                unknown = [i for i in ids if i not in known]
                if unknown:
                    self.add_error(
                        "external_ids",
                        "No active query has these ids: "
                        + ", ".join(unknown[:20])
                        + (f" and {len(unknown) - 20} more" if len(unknown) > 20 else "")
                        + ".",
                    )
            data["external_id_list"] = ids
        return data

    def selected_queries(self) -> tuple[QuerySet[Query], dict[str, Any]]:
        data = self.cleaned_data
        kind = data["selection"]
        return query_selection(
            queries=self.queries,
            category=data["category"] if kind == "category" else None,
            source=data["source"] if kind == "source" else None,
            external_ids=data["external_id_list"] if kind == "list" else None,
        )

    def targets(self) -> list[Endpoint | Pipeline]:
        return [*self.cleaned_data["endpoints"], *self.cleaned_data["pipelines"]]

    def parameters(self) -> dict[str, Any]:
        names = ("temperature", "top_p", "max_tokens", "seed", "system_prompt")
        return {name: self.cleaned_data.get(name) for name in names}

    def run_arguments(self) -> dict[str, Any]:
        """Keyword arguments for ``services.run_create`` (the actor aside)."""
        queries, selection = self.selected_queries()
        return {
            "name": self.cleaned_data["name"],
            "queries": queries,
            "targets": self.targets(),
            "samples": self.cleaned_data["samples"],
            "parameters": self.parameters(),
            "selection": selection,
            "concurrency": self.cleaned_data["concurrency"],
            "max_attempts": self.cleaned_data["max_attempts"],
        }
