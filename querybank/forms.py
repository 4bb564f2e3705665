"""Forms for browsing and importing the query bank."""

from typing import Any, cast

from django import forms
from django.db.models import QuerySet

from querybank.importers import ImportTooLarge
from querybank.models import Category
from querybank.services import import_size_check


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
        try:  # checked on the upload's size, before a byte of it is read
            import_size_check(sizes=[(f.name, f.size) for f in files])
        except ImportTooLarge as refused:
            raise forms.ValidationError([str(problem) for problem in refused.problems]) from refused
        return files

    def named_files(self) -> list[tuple[str, bytes]]:
        return [(f.name, f.read()) for f in self.cleaned_data["files"]]
