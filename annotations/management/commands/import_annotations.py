"""``manage.py import_annotations PATH... --actor EMAIL [--rubric SLUG] [--guideline SLUG]
[--format jsonl|csv] [--missing-values V ...] [--judge RATER ...] [--dry-run]``: another tool's
labels, all or nothing (docs/annotation.md)."""

from argparse import ArgumentParser
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from annotations.defaults import GUIDELINE_SLUG, RESPONSE_RUBRIC_SLUG
from annotations.importers import FORMATS
from annotations.models import Guideline, Rubric
from annotations.services.imports import FIRST_PROBLEMS, annotations_import
from core.imports import ImportRejected
from querybank.models import Category
from querybank.services import import_size_check

_FORMAT_BY_SUFFIX = {".jsonl": "jsonl", ".csv": "csv"}


class Command(BaseCommand):
    help = (
        "Import responses and their human labels from another annotation tool (long format, JSONL or "
        "CSV: docs/annotation.md) as a closed campaign. Any bad row rejects the whole import."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument(
            "--format", choices=FORMATS, dest="file_format", help="default: from the extension"
        )
        parser.add_argument(
            "--actor", metavar="EMAIL", required=True, help="the maintainer the audit log names"
        )
        parser.add_argument("--name", help="the campaign's name (default: the first file's name)")
        parser.add_argument(
            "--rubric", default=RESPONSE_RUBRIC_SLUG, help="response rubric slug (latest version)"
        )
        parser.add_argument("--guideline", default=GUIDELINE_SLUG, help="guideline slug (latest version)")
        parser.add_argument(
            "--category", default="toxicology", help="category of prompts whose rows name none"
        )
        parser.add_argument("--source", default="annotation-import", help="query source slug for the prompts")
        parser.add_argument(
            "--missing-values",
            nargs="+",
            default=[],
            metavar="VALUE",
            help="cell values that mean 'not rated' (e.g. n/a unclear): left empty, not an error",
        )
        parser.add_argument(
            "--judge",
            action="append",
            default=[],
            metavar="RATER",
            help="a rater that is an automated judge: its labels are judge labels, never a rater's "
            "(repeat for several)",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="check everything and print what would be created, writing nothing",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        files = [Path(p) for p in options["paths"]]
        for path in files:
            if not path.is_file():
                raise CommandError(f"{path}: no such file.")
        file_format = options["file_format"] or _infer(files)
        try:
            actor = User.objects.get(email__iexact=options["actor"])
        except User.DoesNotExist as exc:
            raise CommandError(f"No user with the email address {options['actor']}.") from exc
        rubric = Rubric.objects.filter(slug=options["rubric"]).order_by("-version").first()
        guideline = Guideline.objects.filter(slug=options["guideline"]).order_by("-version").first()
        category = Category.objects.filter(slug=options["category"]).first()
        if rubric is None or guideline is None or category is None:
            raise CommandError("Unknown rubric, guideline or category slug.")
        try:
            # The size limit, on the files' sizes, before any is read (the same limit as the page).
            import_size_check(sizes=[(p.name, p.stat().st_size) for p in files])
            with ExitStack() as stack:
                # Open files, not their bytes: the import reads each twice, line by line.
                opened = [(p.name, stack.enter_context(p.open("rb"))) for p in files]
                result = annotations_import(
                    files=opened,
                    file_format=str(file_format),
                    actor=actor,
                    name=str(options["name"] or files[0].name),
                    rubric=rubric,
                    guideline=guideline,
                    default_category=category,
                    source=str(options["source"]),
                    missing_values=list(options["missing_values"]),
                    judges=list(options["judge"]),
                    dry_run=bool(options["dry_run"]),
                )
        except ImportRejected as rejected:  # AnnotationImportRejected and ImportTooLarge alike
            shown = rejected.problems[:FIRST_PROBLEMS] if options["dry_run"] else rejected.problems
            for problem in shown:
                self.stderr.write(str(problem))
            if len(shown) < len(rejected.problems):
                self.stderr.write(f"... and {len(rejected.problems) - len(shown)} more.")
            raise CommandError(
                f"Import rejected: {len(rejected.problems)} problem(s); nothing was imported."
            ) from rejected
        for line in result.summary():
            self.stdout.write(line)
        if result.campaign is None:
            self.stdout.write(self.style.SUCCESS("Dry run: the files are good; nothing was written."))
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported campaign {result.campaign.name!r} (id {result.campaign.pk}): "
                f"{result.items} items, "
                f"{result.labels} labels by {result.raters} raters, {result.adjudicated} adjudicated."
            )
        )


def _infer(files: list[Path]) -> str:
    formats = {_FORMAT_BY_SUFFIX.get(p.suffix.lower()) for p in files}
    if None in formats or len(formats) != 1:
        raise CommandError("Cannot tell the format from the extensions; pass --format.")
    return formats.pop()  # type: ignore[return-value]
