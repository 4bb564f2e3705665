"""``manage.py import_queries PATH...``: import query files all-or-nothing, like the web page."""

from argparse import ArgumentParser
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from core.actors import SYSTEM, SystemActor
from core.imports import ImportRejected
from querybank.importers import FORMATS, read_taxonomy_file
from querybank.services import import_size_check, queries_import

_FORMAT_BY_SUFFIX = {".jsonl": "jsonl", ".csv": "csv"}


class Command(BaseCommand):
    help = (
        "Import queries from JSONL or CSV files (schema: docs/import-format.md) or MedSafetyBench CSV "
        "files. A directory stands for its *.csv and *.jsonl files. Any bad row rejects the whole import."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH", help="files or directories to import")
        parser.add_argument(
            "--format",
            choices=FORMATS,
            dest="file_format",
            help="file format; by default inferred from the extension (.jsonl or .csv)",
        )
        parser.add_argument(
            "--taxonomy",
            metavar="FILE.json",
            help="a taxonomy file (slug, name, categories) created or updated in the same import",
        )
        parser.add_argument(
            "--actor",
            metavar="EMAIL",
            help="the maintainer the audit log names for this import (default: the platform)",
        )

    def handle(
        self,
        *args: object,
        paths: list[str],
        file_format: str | None,
        actor: str | None,
        taxonomy: str | None = None,
        **options: object,
    ) -> None:
        files = _expand(paths)
        file_format = file_format or _infer_format(files)
        user = _user(actor)
        try:
            # The size limit, on the files' sizes, before any is read (the same limit as the page).
            import_size_check(sizes=[(path.name, path.stat().st_size) for path in files])
            named = [(path.name, path.read_bytes()) for path in files]
            spec = None
            if taxonomy:
                taxonomy_path = Path(taxonomy)
                if not taxonomy_path.is_file():
                    raise CommandError(f"{taxonomy}: no such file.")
                spec = read_taxonomy_file(taxonomy_path.name, taxonomy_path.read_bytes())
            result = queries_import(files=named, file_format=file_format, actor=user, taxonomy=spec)
        except ImportRejected as rejected:
            for problem in rejected.problems:
                self.stderr.write(str(problem))
            count = len(rejected.problems)
            raise CommandError(
                f"Import rejected: {count} problem(s) in {len(files)} file(s); nothing was imported."
            ) from rejected
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {len(result.files)} file(s): {result.created} created, {result.updated} updated, "
                f"{result.unchanged} unchanged."
            )
        )


def _expand(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in _FORMAT_BY_SUFFIX)
            if not found:
                raise CommandError(f"{path}: the directory holds no .csv or .jsonl files.")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise CommandError(f"{path}: no such file or directory.")
    return files


def _infer_format(files: list[Path]) -> str:
    formats = {_FORMAT_BY_SUFFIX.get(path.suffix.lower()) for path in files}
    if None in formats:
        unknown = ", ".join(str(p) for p in files if p.suffix.lower() not in _FORMAT_BY_SUFFIX)
        raise CommandError(f"Cannot tell the format of {unknown}; pass --format.")
    if len(formats) > 1:
        raise CommandError("The files mix .csv and .jsonl; import them separately or pass --format.")
    return formats.pop()  # type: ignore[return-value]


def _user(email: str | None) -> User | SystemActor:
    """The named account (the policy checks it may import), else the operator running the command."""
    if email is None:
        return SYSTEM
    try:
        return User.objects.get(email__iexact=email)
    except User.DoesNotExist as exc:
        raise CommandError(f"No user with the email address {email}.") from exc
