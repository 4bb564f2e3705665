"""Writes for evaluations: the registry, collection runs and their items."""

from evaluations.services.registry import endpoint_create, endpoint_update, pipeline_create
from evaluations.services.runs import (
    items_claim,
    items_finish,
    run_cancel,
    run_complete_if_done,
    run_create,
    run_fail,
    run_pause,
    run_resume,
    run_retry_failed,
    run_start,
)

__all__ = [
    "endpoint_create",
    "endpoint_update",
    "items_claim",
    "items_finish",
    "pipeline_create",
    "run_cancel",
    "run_complete_if_done",
    "run_create",
    "run_fail",
    "run_pause",
    "run_resume",
    "run_retry_failed",
    "run_start",
]
