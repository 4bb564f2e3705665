"""Writes to the query bank. Imports are all-or-nothing: every row is checked before one is written."""

from collections.abc import Sequence
from dataclasses import dataclass

from accounts.models import User


@dataclass(frozen=True)
class ImportResult:
    files: list[str]
    created: int
    updated: int
    unchanged: int


def queries_import(
    *, files: Sequence[tuple[str, bytes]], file_format: str, actor: User | None
) -> ImportResult:
    """Import ``files`` (name, raw bytes) of ``file_format`` ("jsonl", "csv", "medsafetybench").

    Raises ``querybank.importers.QueryImportRejected`` listing every problem (file, line, field)
    and writes nothing when any row is bad.
    """
    raise NotImplementedError("written by the import work package")
