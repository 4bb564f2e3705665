import json
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig


class JudgingConfig(AppConfig):
    name = "judging"
    verbose_name = "LLM judges"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from annotations.judges import judge_label_writer_register
        from judging.selectors import judge_assisted_rates, trusted_judge_labels
        from scoring.judges import JudgeReaders, judge_readers_register

        # An annotation import's judge labels are stored as external judge labels, through the same
        # service as a judge-label file (annotations sits below and cannot import it).
        judge_label_writer_register(_write_judge_labels, _judge_field_accepts)

        # The scores pages' judge source reads trusted judge labels through this (scoring sits below).
        judge_readers_register(
            JudgeReaders(trusted_labels=trusted_judge_labels, assisted_rates=judge_assisted_rates)
        )


def _judge_field_accepts(field: str, value: Any) -> bool:
    from judging.parsers import AUDIT_FIELDS, valid_value

    return field in AUDIT_FIELDS and (value is None or valid_value(field, value))


def _write_judge_labels(actor: Any, judge: str, file_name: str, labels: Sequence[Any]) -> int:
    """Write an annotation import's judge labels as the judge-label file the judging service reads."""
    from judging.services.imports import external_labels_import

    raw = "".join(
        json.dumps(
            {
                "judge": judge,
                "response": label.response_id,
                "field": label.field,
                "value": label.value,
                "raw_output": label.raw_output,
            }
        )
        + "\n"
        for label in labels
    ).encode()
    batch = external_labels_import(
        actor=actor, name=f"{file_name} ({judge})"[:255], raw=raw, file_format="jsonl"
    )
    return int(batch.rows)
