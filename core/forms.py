"""Form pieces every import page shares: a multiple-file field and the size check on upload."""

from typing import Any

from django import forms

from core.imports import ImportTooLarge, import_size_check


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


class ImportFilesForm(forms.Form):
    """A form with a ``files`` field of uploads, refused on their size before a byte is read."""

    def clean_files(self) -> list[Any]:
        files = self.cleaned_data["files"]
        try:
            import_size_check(sizes=[(f.name, f.size) for f in files])
        except ImportTooLarge as refused:
            raise forms.ValidationError([str(problem) for problem in refused.problems]) from refused
        return files

    def named_files(self) -> list[tuple[str, bytes]]:
        return [(f.name, f.read()) for f in self.cleaned_data["files"]]
