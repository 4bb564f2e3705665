"""``manage.py export_queries``: the whole query bank as JSONL or CSV, in the import schema."""

from argparse import ArgumentParser

from django.core.management.base import BaseCommand

from querybank.exporters import EXPORT_FORMATS, export_stream
from querybank.models import Query


class Command(BaseCommand):
    help = "Export every query as JSONL or CSV (the import schema, so the file re-imports unchanged)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--format", choices=list(EXPORT_FORMATS), default="jsonl", dest="file_format")
        parser.add_argument("--output", metavar="FILE", help="write here instead of standard output")

    def handle(self, *args: object, file_format: str, output: str | None, **options: object) -> None:
        # The operator's command exports everything; the web export goes through the user's selector.
        queries = Query.objects.all()
        chunks = export_stream(queries=queries, file_format=file_format)
        if output is None:
            for chunk in chunks:
                self.stdout.write(chunk, ending="")
            return
        # newline="" keeps the CSV writer's own line endings as they are.
        with open(output, "w", encoding="utf-8", newline="") as handle:
            for chunk in chunks:
                handle.write(chunk)
        self.stdout.write(f"Exported {queries.count()} queries to {output}.")
