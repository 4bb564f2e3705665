"""Parsing and checking query files (JSONL, CSV, MedSafetyBench CSV): pure Python, no Django."""

from dataclasses import dataclass


@dataclass(frozen=True)
class ImportProblem:
    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file + (f", line {self.line}" if self.line is not None else "")
        return f"{where}" + (f", field {self.field!r}" if self.field else "") + f": {self.message}"


class QueryImportRejected(Exception):
    def __init__(self, problems: list[ImportProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
