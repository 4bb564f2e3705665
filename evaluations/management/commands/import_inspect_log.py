"""``manage.py import_inspect_log FILE.eval|FILE.json --actor EMAIL [--category SLUG] [--source SLUG]``:
an Inspect AI evaluation log as a completed collection run (docs/collection.md)."""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from evaluations.inspect_logs import InspectUnavailableError
from evaluations.services.imports import inspect_log_import
from querybank.models import Category


class Command(BaseCommand):
    help = (
        "Import an Inspect AI evaluation log (.eval or .json): its samples, model, generation config, "
        "outputs, token usage and model-graded scores become a completed collection run."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("path", metavar="FILE")
        parser.add_argument(
            "--actor", metavar="EMAIL", required=True, help="the maintainer the audit log names"
        )
        parser.add_argument("--category", default="toxicology", help="category of the samples' prompts")
        parser.add_argument("--source", default="", help="query source slug (default: inspect-<task>)")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file.")
        try:
            actor = User.objects.get(email__iexact=options["actor"])
        except User.DoesNotExist as exc:
            raise CommandError(f"No user with the email address {options['actor']}.") from exc
        category = Category.objects.filter(slug=options["category"], retired=False).first()
        if category is None:
            raise CommandError(f"Unknown category {options['category']!r}.")
        try:
            result = inspect_log_import(
                actor=actor, path=str(path), category=category, source=options["source"]
            )
        except InspectUnavailableError as exc:
            raise CommandError(str(exc)) from exc
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported run {result.run.name!r} (id {result.run.pk}): {result.responses} responses, "
                f"{result.new_queries} new prompts."
            )
        )
