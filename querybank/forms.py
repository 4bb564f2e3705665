"""Forms for browsing and importing the query bank."""

from typing import Any, cast

from django import forms
from django.conf import settings
from django.db.models import QuerySet

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


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data: object, initial: object = None) -> list[object]:
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)]


class QueryImportForm(forms.Form):
    FORMAT_CHOICES = [
        ("jsonl", "JSON Lines (.jsonl)"),
        ("csv", "CSV with a header row (.csv)"),
        ("medsafetybench", "MedSafetyBench CSV files"),
    ]
    # The metaclass moves declared fields to ``base_fields``: ``self.files`` stays the uploaded files.
    files = MultipleFileField(label="Files")  # type: ignore[assignment]
    file_format = forms.ChoiceField(choices=FORMAT_CHOICES, label="Format")

    def clean_files(self) -> list[object]:
        files = self.cleaned_data["files"]
        too_big = [f.name for f in files if f.size > settings.QUERY_IMPORT_MAX_BYTES]
        if too_big:
            raise forms.ValidationError(
                f"Over the {settings.QUERY_IMPORT_MAX_BYTES // (1024 * 1024)} MB limit: {', '.join(too_big)}"
            )
        return files

    def named_files(self) -> list[tuple[str, bytes]]:
        return [(f.name, f.read()) for f in self.cleaned_data["files"]]
