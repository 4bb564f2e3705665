"""Demo registry: two models and a Llama Guard-style guard on the local mock model server, and a
guarded pipeline, so the whole loop runs offline. Re-running changes nothing."""

from typing import Any

from evaluations.models import Endpoint, EndpointFamily, GuardFormat, Pipeline
from evaluations.services import endpoint_create, endpoint_update, pipeline_create

DEFAULT_MOCK_URL = "http://127.0.0.1:8765/v1"


def _endpoint_specs(base_url: str) -> list[dict[str, Any]]:
    common = {"base_url": base_url, "max_concurrency": 32, "timeout_seconds": 30.0}
    return [
        {
            **common,
            "slug": "demo-general",
            "name": "Demo general model",
            "model_name": "mock-model",
            "family": EndpointFamily.GENERAL,
            "default_parameters": {"max_tokens": 400},
        },
        {
            **common,
            "slug": "demo-medical",
            "name": "Demo medical fine-tune",
            "model_name": "mock-medical-model",
            "family": EndpointFamily.MEDICAL,
            "default_parameters": {"max_tokens": 400},
        },
        {
            **common,
            "slug": "demo-guard",
            "name": "Demo Llama Guard",
            "model_name": "mock-guard",
            "family": EndpointFamily.GUARDRAIL,
            "guard_format": GuardFormat.LLAMA_GUARD,
        },
    ]


def demo_registry_ensure(*, base_url: str = DEFAULT_MOCK_URL) -> int:
    """Create or repair the demo endpoints and pipeline; returns how many rows changed."""
    changed = 0
    for spec in _endpoint_specs(base_url):
        existing = Endpoint.objects.filter(slug=spec["slug"]).first()
        if existing is None:
            endpoint_create(actor=None, **spec)
            changed += 1
        elif any(getattr(existing, name) != value for name, value in spec.items()):
            endpoint_update(actor=None, endpoint=existing, **spec)
            changed += 1
    medical = Endpoint.objects.get(slug="demo-medical")
    general = Endpoint.objects.get(slug="demo-general")
    if medical.base_model_id != general.pk:
        endpoint_update(actor=None, endpoint=medical, base_model=general)
        changed += 1
    if not Pipeline.objects.filter(slug="demo-guarded").exists():
        guard = Endpoint.objects.get(slug="demo-guard")
        pipeline_create(
            actor=None,
            slug="demo-guarded",
            name="Demo general model behind the guard",
            input_guard=guard,
            model=general,
            output_guard=guard,
        )
        changed += 1
    return changed
