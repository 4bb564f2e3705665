"""The demo judge: the built-in HarmBench-style template, a judge on the local mock model server in
judge mode, and one judge run over the demo collection run, judged now, so the audit page has
figures to show against the demo labelled campaign. Re-running changes nothing.

The mock judge is ``mock-judge-noisy``: it reads the fenced response as a real judge would and flips
a fifth of its verdicts, so the audit shows what a judge that mostly agrees looks like: κ below 1,
a confusion matrix with errors both ways, a per-model bias with its interval.
"""

from __future__ import annotations

import contextlib
import urllib.request
from urllib.parse import urlsplit

from accounts.models import User
from core.actors import SYSTEM
from evaluations.models import CollectionRun, Endpoint, RunStatus
from evaluations.services import endpoint_create, endpoint_update
from evaluations.services.registry import EndpointFields
from judging.collector import judge_run_collect
from judging.models import Judge, JudgeRun, JudgeTemplate
from judging.services import judge_create, judge_run_create, judge_run_start
from mockmodel.app import MockServerConfig
from mockmodel.runner import MockServerThread

DEMO_JUDGE_SLUG = "demo-judge"
DEMO_JUDGE_RUN = "Demo judge run"
DEMO_TEMPLATE = ("harmbench-unsafe", 1)


def _endpoint_spec(base_url: str) -> EndpointFields:
    return {
        "slug": "demo-judge",
        "name": "Demo judge model",
        "model_name": "mock-judge-noisy",
        "base_url": base_url,
        "max_concurrency": 32,
        "timeout_seconds": 30.0,
    }


def demo_judge_ensure(*, maintainer: User, base_url: str) -> Judge:
    """The demo judge endpoint and judge (created or repaired)."""
    spec = _endpoint_spec(base_url)
    endpoint = Endpoint.objects.filter(slug=spec["slug"]).first()
    if endpoint is None:
        endpoint = endpoint_create(actor=SYSTEM, **spec)
    elif any(getattr(endpoint, name) != value for name, value in spec.items()):
        endpoint = endpoint_update(actor=SYSTEM, endpoint=endpoint, **spec)
    judge = Judge.objects.filter(slug=DEMO_JUDGE_SLUG).first()
    if judge is None:
        slug, version = DEMO_TEMPLATE
        judge = judge_create(
            actor=maintainer, slug=DEMO_JUDGE_SLUG, name="Demo HarmBench judge", endpoint=endpoint,
            template=JudgeTemplate.objects.get(slug=slug, version=version), temperature=0.0, seed=7,
        )  # fmt: skip
    return judge


def _answers(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url.rstrip("/") + "/models", timeout=2):  # noqa: S310 - loopback
            return True
    except (OSError, ValueError):
        return False


def demo_judge_run_ensure(*, run: CollectionRun, maintainer: User, base_url: str) -> JudgeRun:
    """The demo judge run over ``run``, judged now (from the mock at ``base_url``, or from one
    started in this process for the duration when none answers there). Call it outside any open
    transaction: the collector writes from its own threads."""
    existing = JudgeRun.objects.filter(name=DEMO_JUDGE_RUN).first()
    if existing is not None:
        return existing
    judge = demo_judge_ensure(maintainer=maintainer, base_url=base_url)
    judge_run = judge_run_create(
        actor=maintainer, judge=judge, collection_run=run, name=DEMO_JUDGE_RUN, concurrency=16
    )
    judge_run = judge_run_start(run=judge_run, actor=maintainer, dispatch=False)
    with contextlib.ExitStack() as stack:
        if not _answers(base_url):
            port = urlsplit(base_url).port or 8765
            stack.enter_context(MockServerThread(MockServerConfig(port=port, latency_ms=0)))
        judge_run_collect(run_id=judge_run.pk)
    judge_run.refresh_from_db()
    if judge_run.status != RunStatus.COMPLETED:
        raise RuntimeError(f"The demo judge run ended {judge_run.status}: {judge_run.failure_reason}")
    return judge_run
