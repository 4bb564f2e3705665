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
