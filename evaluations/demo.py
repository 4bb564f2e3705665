"""Demo registry and demo run: two models and a Llama Guard-style guard on the local mock model
server, a guarded pipeline, and one collection run over the demo queries, so the whole loop runs
offline. Re-running changes nothing."""

import contextlib
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from accounts.models import User
from core.actors import SYSTEM
from evaluations.collector import run_collect
from evaluations.models import CollectionRun, Endpoint, EndpointFamily, GuardFormat, Pipeline
from evaluations.services import endpoint_create, endpoint_update, pipeline_create, run_create, run_start
from mockmodel.app import MockServerConfig
from mockmodel.runner import MockServerThread
from querybank.models import Query, QueryStatus

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
            endpoint_create(actor=SYSTEM, **spec)
            changed += 1
        elif any(getattr(existing, name) != value for name, value in spec.items()):
            endpoint_update(actor=SYSTEM, endpoint=existing, **spec)
            changed += 1
    medical = Endpoint.objects.get(slug="demo-medical")
    general = Endpoint.objects.get(slug="demo-general")
    if medical.base_model_id != general.pk:
        endpoint_update(actor=SYSTEM, endpoint=medical, base_model=general)
        changed += 1
    if not Pipeline.objects.filter(slug="demo-guarded").exists():
        guard = Endpoint.objects.get(slug="demo-guard")
        pipeline_create(
            actor=SYSTEM,
            slug="demo-guarded",
            name="Demo general model behind the guard",
            input_guard=guard,
            model=general,
            output_guard=guard,
        )
        changed += 1
    return changed


DEMO_RUN_NAME = "Demo collection"


def _answers(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url.rstrip("/") + "/models", timeout=2):  # noqa: S310 - loopback
            return True
    except (OSError, ValueError):
        return False


def demo_run_ensure(*, actor: User, base_url: str = DEFAULT_MOCK_URL) -> CollectionRun:
    """The demo queries x (general model, medical fine-tune, guarded pipeline), collected now.

    Collected from the mock model server at ``base_url``; when none answers there, one is started
    in this process for the duration (so ``seed_demo`` works before ``bin/serve`` starts its own).
    The collector writes from its own thread, so call this outside any open transaction.
    """
    existing = CollectionRun.objects.filter(name=DEMO_RUN_NAME).first()
    if existing is not None:
        return existing
    targets: list[Endpoint | Pipeline] = [
        Endpoint.objects.get(slug="demo-general"),
        Endpoint.objects.get(slug="demo-medical"),
        Pipeline.objects.get(slug="demo-guarded"),
    ]
    run = run_create(
        actor=actor,
        name=DEMO_RUN_NAME,
        queries=Query.objects.filter(source="demo", status=QueryStatus.ACTIVE),
        targets=targets,
        parameters={"temperature": 0.0, "seed": 1},
        selection={"kind": "source", "source": "demo"},
    )
    run = run_start(run=run, actor=actor, dispatch=False)
    with contextlib.ExitStack() as stack:
        if not _answers(base_url):
            port = urlsplit(base_url).port or 8765
            stack.enter_context(MockServerThread(MockServerConfig(port=port, latency_ms=0)))
        run_collect(run_id=run.pk)
    run.refresh_from_db()
    return run
