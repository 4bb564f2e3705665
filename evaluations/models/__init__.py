"""Evaluation models: the model registry, guardrail pipelines and collection runs."""

from evaluations.models.collection import (
    CollectionRun,
    Collector,
    CollectorState,
    ModelResponse,
    ResponseOutcome,
    ResponseState,
    RunStatus,
    RunTarget,
)
from evaluations.models.registry import Endpoint, EndpointFamily, EndpointKind, GuardFormat, Pipeline

__all__ = [
    "CollectionRun",
    "Collector",
    "CollectorState",
    "Endpoint",
    "EndpointFamily",
    "EndpointKind",
    "GuardFormat",
    "ModelResponse",
    "Pipeline",
    "ResponseOutcome",
    "ResponseState",
    "RunStatus",
    "RunTarget",
]
