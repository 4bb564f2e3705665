"""Writes for evaluations: the registry, collection runs and their items."""

from evaluations.services.registry import endpoint_create, endpoint_update, pipeline_create
from evaluations.services.runs import (
    broker_check,
    collection_supervise_locally,
    collection_threads_wait,
    items_claim,
    items_finish,
    items_finish_many,
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
    "broker_check",
    "collection_supervise_locally",
    "collection_threads_wait",
    "endpoint_create",
    "endpoint_update",
    "items_claim",
    "items_finish",
    "items_finish_many",
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
