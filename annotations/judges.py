"""Where an annotation import hands a judge's labels on: the judging app (above this one) registers
its writer here at start-up, so the import never imports it and a judge is never a rater."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from accounts.models import User


@dataclass(frozen=True)
class JudgeLabel:
    response_id: int
    field: str
    value: Any  # canonical rubric value; None: the judge's output meant nothing (a parse failure)
    raw_output: str = ""


# (actor, judge name, file name, labels) -> how many were stored; raises ``ImportRejected``.
JudgeLabelWriter = Callable[[User, str, str, Sequence[JudgeLabel]], int]
# (field name, value) -> whether the judging app can store that field's value.
JudgeFieldCheck = Callable[[str, Any], bool]

_writer: JudgeLabelWriter | None = None
_field_check: JudgeFieldCheck | None = None


def judge_label_writer_register(writer: JudgeLabelWriter, field_check: JudgeFieldCheck) -> None:
    global _writer, _field_check
    _writer, _field_check = writer, field_check


def judge_label_writer() -> tuple[JudgeLabelWriter, JudgeFieldCheck] | None:
    """The registered writer and its field check, or ``None`` when no judging app is installed."""
    if _writer is None or _field_check is None:
        return None
    return _writer, _field_check
