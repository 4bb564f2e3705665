"""Forms for browsing and importing the query bank."""

from typing import Any, cast

from django import forms
from django.db.models import QuerySet

from core.forms import ImportFilesForm, MultipleFileField
from querybank.models import Category


class QueryFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", max_length=200)
    category = forms.ChoiceField(required=False, label="Category")

    def __init__(self, *args: Any, categories: QuerySet[Category], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        groups: dict[str, list[tuple[str, str]]] = {}
        for category in categories:
            groups.setdefault(category.taxonomy.name, []).append((category.slug, category.name))
        cast(forms.ChoiceField, self.fields["category"]).choices = [("", "All categories"), *groups.items()]

    def cleaned_filters(self) -> dict[str, str]:
        return {"search": self.cleaned_data["q"].strip(), "category_slug": self.cleaned_data["category"]}


class QueryImportForm(ImportFilesForm):
    FORMAT_CHOICES = [
        ("jsonl", "JSON Lines (.jsonl)"),
        ("csv", "CSV with a header row (.csv)"),
        ("medsafetybench", "MedSafetyBench CSV files"),
    ]
    # The metaclass moves declared fields to ``base_fields``: ``self.files`` stays the uploaded files.
    files = MultipleFileField(label="Files")  # type: ignore[assignment]
    file_format = forms.ChoiceField(choices=FORMAT_CHOICES, label="Format")
    taxonomy = forms.FileField(
        required=False,
        label="Taxonomy file (optional)",
        help_text="JSON: slug, name and categories; created or updated with the queries, all or nothing.",
    )

    def taxonomy_file(self) -> tuple[str, bytes] | None:
        upload = self.cleaned_data.get("taxonomy")
        return None if upload is None else (upload.name, upload.read())


class TaxonomyForm(forms.Form):
    slug = forms.SlugField(max_length=60)
    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class CategoryForm(forms.Form):
    """A new category (slug given) or a change to one (slug left out: it never changes)."""

    slug = forms.SlugField(max_length=80, required=False)
    name = forms.CharField(max_length=160)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    position = forms.IntegerField(min_value=0, max_value=32767, required=False)


class TaxonomyFileForm(ImportFilesForm):
    files = MultipleFileField(label="Taxonomy file (JSON)")  # type: ignore[assignment]
