"""Forms of the annotation pages, and the rubric form that is built from a rubric's fields."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from django import forms
from django.db.models import Q, QuerySet

from accounts.models import User
from accounts.roles import Role
from annotations.importers import FORMATS
from annotations.models import (
    Campaign,
    FlagReason,
    Guideline,
    Rubric,
    RubricTarget,
    SkipReason,
)
from annotations.rubric_schema import FieldSpec, Kind, Option
from core.forms import ImportFilesForm, MultipleFileField
from evaluations.models import CollectionRun, RunTarget
from querybank.models import Category

VALUE_PREFIX = "v_"  # rubric values are posted as v_<field name>, apart from every other input


def _model_field(form: forms.BaseForm, name: str) -> forms.ModelChoiceField:
    """The declared model choice field ``name`` of ``form`` (``form.fields`` holds plain ``Field``s)."""
    return cast(forms.ModelChoiceField, form.fields[name])


# --- the rubric form ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OptionView:
    token: str
    label: str
    key: str
    checked: bool
    input_id: str


@dataclass(frozen=True)
class FieldView:
    spec: FieldSpec
    input_name: str
    options: list[OptionView]
    text: str
    error: str
    agreed: bool = False  # adjudication: every label gave this field the same value (prefilled)

    @property
    def keys_hint(self) -> str:
        keys = [o.key for o in self.options if o.key]
        if len(keys) < 2:
            return ""
        digits = keys[:9]
        hint = f"{digits[0]}\N{EN DASH}{digits[-1]}"
        if len(keys) > 9:
            hint += ", 0"
        if len(keys) > 10:
            letters = keys[10:]
            hint += f", {letters[0]}" + (f"\N{EN DASH}{letters[-1]}" if len(letters) > 1 else "")
        return hint


def _token(spec: FieldSpec, value: object) -> str:
    if value is None:
        return ""
    return Option(value=value, label="").token if spec.kind != Kind.TEXT else str(value)  # type: ignore[arg-type]


def rubric_field_views(
    specs: Sequence[FieldSpec],
    *,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, Any] | None = None,
    raw: Mapping[str, str] | None = None,
    prefix: str = "",
    agreed: frozenset[str] = frozenset(),
) -> list[FieldView]:
    """What the template needs to draw each field: canonical ``values`` (a stored label) or
    ``raw`` posted text (a form with errors) decide which points are checked."""
    values = values or {}
    errors = errors or {}
    views = []
    for spec in specs:
        input_name = VALUE_PREFIX + spec.name
        current = raw.get(input_name, "") if raw is not None else _token(spec, values.get(spec.name))
        error = errors.get(spec.name, "")
        if isinstance(error, list):
            error = " ".join(str(e) for e in error)
        options = [
            OptionView(
                token=option.token,
                label=option.label,
                key=spec.key_for(position, option),
                checked=current == option.token,
                input_id=f"{prefix}{input_name}-{position}",
            )
            for position, option in enumerate(spec.options)
        ]
        views.append(
            FieldView(
                spec=spec,
                input_name=input_name,
                options=options,
                text=current if spec.kind == Kind.TEXT else "",
                error=str(error),
                agreed=spec.name in agreed,
            )
        )
    return views


def values_from_post(specs: Sequence[FieldSpec], data: Mapping[str, str]) -> dict[str, str]:
    """The posted rubric values by field name (the services check and convert them)."""
    return {spec.name: data.get(VALUE_PREFIX + spec.name, "") for spec in specs}


def raw_values(specs: Sequence[FieldSpec], data: Mapping[str, str]) -> dict[str, str]:
    return {VALUE_PREFIX + spec.name: data.get(VALUE_PREFIX + spec.name, "") for spec in specs}


# --- small forms ------------------------------------------------------------------------------------


class SkipForm(forms.Form):
    reason = forms.ChoiceField(
        choices=[("", "Choose a reason…"), *SkipReason.choices],
        widget=forms.Select(attrs={"id": "skip-reason"}),
    )
    note = forms.CharField(required=False, max_length=500, label="Note (optional)")


class FlagForm(forms.Form):
    reason = forms.ChoiceField(
        choices=[("", "What is wrong?"), *FlagReason.choices],
        widget=forms.Select(attrs={"id": "flag-reason"}),
    )
    note = forms.CharField(required=False, max_length=1000, label="Note (optional)")


class AdjudicationForm(forms.Form):
    rationale = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=5000,
        help_text="Why this is the gold label: the annotators and later readers see it.",
    )


def _clinicians() -> Any:
    return User.objects.filter(is_active=True, groups__name=Role.CLINICIAN.value).order_by("email")


class AnnotatorChoiceField(forms.ModelMultipleChoiceField):
    """Clinicians, each shown by name and e-mail address."""

    def label_from_instance(self, obj: User) -> str:
        return f"{obj.display_name} <{obj.email}>" if obj.display_name else obj.email


class RunTargetChoiceField(forms.ModelMultipleChoiceField):
    """The models of collection runs, each shown with its run."""

    def label_from_instance(self, obj: RunTarget) -> str:
        return f"{obj.run.name}: {obj.label}"


class RubricSelect(forms.Select):
    """Each rubric option says what it rates, so the page can show only the target's rubrics."""

    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(name, value, *args, **kwargs)
        instance = getattr(value, "instance", None)
        if instance is not None:
            option["attrs"]["data-target"] = instance.target
        return option


class CampaignForm(forms.Form):
    # The page shows these in sections; the target's own section is the only one it shows.
    SECTIONS = (
        ("what", "What to label", ("name", "description", "target", "rubric", "guideline")),
        ("responses", "Which responses", ("runs", "run_targets")),
        ("queries", "Which queries", ("sources",)),
        ("scope", "Categories", ("categories",)),
        (
            "who",
            "Who labels, and how",
            ("annotators", "overlap", "blind", "session_item_limit", "lease_minutes", "deadline"),
        ),
        (
            "disagreement",
            "When labels disagree",
            ("adjudicate_primary_disagreement", "adjudicate_ordinal_spread"),
        ),
    )

    name = forms.CharField(
        max_length=200,
        help_text="Annotators see this name: never put a model's name in it.",
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    target = forms.ChoiceField(
        choices=RubricTarget.choices, initial=RubricTarget.RESPONSE, widget=forms.RadioSelect
    )
    rubric = forms.ModelChoiceField(
        queryset=Rubric.objects.none(),
        required=False,
        empty_label="The newest rubric for the target",
        widget=RubricSelect,
    )
    guideline = forms.ModelChoiceField(queryset=Guideline.objects.none())
    overlap = forms.IntegerField(min_value=1, max_value=20, initial=2, label="Labels per item (k)")
    annotators = AnnotatorChoiceField(
        queryset=User.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    blind = forms.BooleanField(
        required=False,
        initial=True,
        help_text="Annotators never see model identity, others' labels, judges' labels or gold behaviour.",
    )
    deadline = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    session_item_limit = forms.IntegerField(required=False, min_value=1, label="Items per session")
    lease_minutes = forms.IntegerField(
        min_value=1, max_value=24 * 60, initial=20, label="Reservation (minutes)"
    )
    adjudicate_primary_disagreement = forms.BooleanField(
        required=False, initial=True, label="Adjudicate any disagreement on the primary field"
    )
    adjudicate_ordinal_spread = forms.IntegerField(
        required=False,
        min_value=1,
        initial=2,
        label="Adjudicate an ordinal spread of at least",
        help_text="Points between the lowest and highest rating; empty: never.",
    )
    runs = forms.ModelMultipleChoiceField(
        queryset=CollectionRun.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Response campaigns: the collection runs whose responses to label.",
    )
    run_targets = RunTargetChoiceField(
        queryset=RunTarget.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Only these models",
        help_text="Empty: every model of the chosen runs.",
    )
    categories = forms.ModelMultipleChoiceField(
        queryset=Category.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Empty: every category.",
    )
    sources = forms.CharField(
        required=False,
        help_text="Query campaigns: query sources, comma-separated (empty: all).",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _model_field(self, "rubric").queryset = Rubric.objects.filter(
            pk__in=Rubric.objects.latest_versions().values("pk")
        ).order_by("target", "slug")
        guidelines = Guideline.objects.order_by("slug", "-version")
        _model_field(self, "guideline").queryset = guidelines
        _model_field(self, "annotators").queryset = _clinicians()
        _model_field(self, "runs").queryset = CollectionRun.objects.order_by("-created_at")
        _model_field(self, "run_targets").queryset = RunTarget.objects.select_related("run").order_by(
            "-run_id", "label"
        )
        _model_field(self, "categories").queryset = Category.objects.select_related("taxonomy")
        latest = guidelines.first()
        if latest is not None:
            self.fields["guideline"].initial = latest.pk

    def sections(self) -> list[dict[str, Any]]:
        return [
            {"key": key, "title": title, "fields": [self[name] for name in names]}
            for key, title, names in self.SECTIONS
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data is None:  # Form.clean returns cleaned_data; None would mean a parent class lost it
            raise RuntimeError("CampaignForm: the parent clean() returned no data.")
        rubric, target = data.get("rubric"), data.get("target")
        if rubric is None and target:
            # The default: the newest version of a rubric that rates the chosen target.
            latest = Rubric.objects.filter(pk__in=Rubric.objects.latest_versions().values("pk"))
            rubric = data["rubric"] = latest.filter(target=target).order_by("-created_at", "-pk").first()
            if rubric is None:
                self.add_error("rubric", "No rubric rates this target yet: create one first.")
        if rubric is not None and target and rubric.target != target:
            self.add_error("rubric", f"{rubric} rates {rubric.get_target_display().lower()}.")
        if target == RubricTarget.RESPONSE and not data.get("runs"):
            self.add_error("runs", "Choose the runs whose responses to label.")
        return data

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "description": data["description"],
            "target": data["target"],
            "rubric": data["rubric"],
            "guideline": data["guideline"],
            "overlap": data["overlap"],
            "annotators": list(data["annotators"]),
            "blind": data["blind"],
            "deadline": data["deadline"],
            "session_item_limit": data["session_item_limit"],
            "lease_minutes": data["lease_minutes"],
            "adjudicate_primary_disagreement": data["adjudicate_primary_disagreement"],
            "adjudicate_ordinal_spread": data["adjudicate_ordinal_spread"],
            "runs": [r.pk for r in data["runs"]],
            "run_targets": [t.pk for t in data["run_targets"]],
            "categories": [c.pk for c in data["categories"]],
            "sources": [s.strip() for s in data["sources"].split(",") if s.strip()],
        }


class CampaignUpdateForm(forms.ModelForm):
    annotators = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    class Meta:
        model = Campaign
        fields = ["name", "description", "deadline", "session_item_limit", "lease_minutes"]
        widgets = {
            "deadline": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            "description": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The pool keeps its current members even if one has since lost the role.
        members = self.instance.annotators.values("pk") if self.instance.pk else []
        _model_field(self, "annotators").queryset = User.objects.filter(
            Q(pk__in=_clinicians().values("pk")) | Q(pk__in=members)
        ).order_by("email")
        self.fields["annotators"].initial = list(self.instance.annotators.all()) if self.instance.pk else []


class AnnotationImportForm(ImportFilesForm):
    # The metaclass moves declared fields to ``base_fields``: ``self.files`` stays the uploaded files.
    files = MultipleFileField(  # type: ignore[assignment]
        label="Files", help_text="JSONL or CSV in the long format (docs/annotation.md)."
    )
    file_format = forms.ChoiceField(choices=[(f, f.upper()) for f in FORMATS], label="Format")
    name = forms.CharField(max_length=200, label="Campaign name")
    rubric = forms.ModelChoiceField(queryset=Rubric.objects.none())
    guideline = forms.ModelChoiceField(
        queryset=Guideline.objects.none(),
        help_text="The guideline gold decisions made here will follow.",
    )
    default_category = forms.ModelChoiceField(
        queryset=Category.objects.none(),
        help_text="For prompts whose rows name no category.",
    )
    source = forms.SlugField(
        initial="annotation-import", help_text="The query source the prompts are filed under."
    )
    missing_values = forms.CharField(
        required=False,
        max_length=1000,
        help_text="Cell values that mean 'not rated', comma-separated (e.g. n/a, unclear).",
    )
    judges = forms.CharField(
        required=False,
        max_length=1000,
        label="Judge raters",
        help_text="Automated judges among the raters, comma-separated: judge labels, never a rater's.",
    )
    dry_run = forms.BooleanField(
        required=False, label="Dry run", help_text="Check and show what would be created; write nothing."
    )

    def clean_missing_values(self) -> list[str]:
        return _comma_list(self.cleaned_data.get("missing_values", ""))

    def clean_judges(self) -> list[str]:
        return _comma_list(self.cleaned_data.get("judges", ""))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices: dict[str, QuerySet[Any]] = {
            "rubric": Rubric.objects.filter(target=RubricTarget.RESPONSE).order_by("slug", "-version"),
            "guideline": Guideline.objects.order_by("slug", "-version"),
            "default_category": Category.objects.select_related("taxonomy"),
        }
        for name, queryset in choices.items():
            _model_field(self, name).queryset = queryset
            first = queryset.first()
            if first is not None:
                self.fields[name].initial = first.pk


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
