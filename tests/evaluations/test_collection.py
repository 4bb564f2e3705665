"""Collection runs end to end: real HTTP to our mock model server, real PostgreSQL, the collector
running as the Celery task does (in-process here; tests/evaluations/test_collection_faults.py
kills and restarts real workers)."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from accounts.roles import Role
from core.actors import SYSTEM
from evaluations import services
from evaluations.collector import run_collect
from evaluations.models import (
    CollectionRun,
    Endpoint,
    EndpointFamily,
    GuardFormat,
    ModelResponse,
    RunStatus,
)
from mockmodel.app import MockServerConfig
from mockmodel.behaviours import FaultRates
from mockmodel.runner import MockServerThread
from querybank.models import Query
from tests.factories import QueryFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def mock_server():
    with MockServerThread(MockServerConfig(latency_ms=5)) as server:
        yield server


@pytest.fixture
def maintainer():
    return UserFactory(role=Role.MAINTAINER)


def endpoint(server: MockServerThread, slug: str, model: str = "mock-model", **fields: object):
    defaults = {
        "slug": slug,
        "name": slug.title(),
        "base_url": server.openai_base_url,
        "model_name": model,
        "max_concurrency": 32,
        "timeout_seconds": 5,
        "price_input_per_million": Decimal("1.5"),
        "price_output_per_million": Decimal("6"),
    }
    return services.endpoint_create(actor=SYSTEM, **{**defaults, **fields})


def guard(server: MockServerThread, slug: str):
    return endpoint(
        server,
        slug,
        model="mock-guard",
        family=EndpointFamily.GUARDRAIL,
        guard_format=GuardFormat.LLAMA_GUARD,
    )


def started_run(maintainer, targets, *, queries=None, samples=1, **kwargs):
    run = services.run_create(
        actor=maintainer,
        name="test run",
        queries=queries or Query.objects.all(),
        targets=targets,
        samples=samples,
        **kwargs,
    )
    CollectionRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)  # as run_start, minus dispatch
    return run


def test_every_item_collected_once_with_provenance(mock_server, maintainer) -> None:
    QueryFactory.create_batch(12)
    model = endpoint(mock_server, "model-a")
    run = started_run(
        maintainer,
        [model],
        samples=2,
        parameters={"temperature": 0.7, "seed": 11, "system_prompt": "Be careful."},
    )

    written = run_collect(run_id=run.pk)

    run.refresh_from_db()
    assert written == 24
    assert run.status == RunStatus.COMPLETED
    responses = ModelResponse.objects.filter(run=run)
    assert responses.count() == 24
    assert set(responses.values_list("outcome", flat=True)) == {"collected"}
    one = responses.get(query=Query.objects.order_by("pk").first(), sample_index=1)
    sent = one.request
    assert sent["body"]["messages"][0] == {"role": "system", "content": "Be careful."}
    assert sent["body"]["messages"][1]["content"] == one.query.text
    assert sent["body"]["temperature"] == 0.7
    assert sent["body"]["seed"] == 12  # the run's seed plus the sample index
    assert one.resolved_model == one.raw_reply["model"] == "mock-model-mock-1"  # as the server resolved it
    assert one.text
    assert one.raw_reply["choices"][0]["message"]["content"] == one.text
    assert one.input_tokens > 0
    assert one.output_tokens > 0
    expected_cost = (Decimal(one.input_tokens) * Decimal("1.5") + Decimal(one.output_tokens) * 6) / 10**6
    assert one.cost == expected_cost.quantize(Decimal("0.000001"))
    assert one.attempts == 1
    assert one.latency_ms is not None


def test_pipeline_records_blocks_as_blocks(mock_server, maintainer) -> None:
    QueryFactory.create_batch(40)
    pipeline = services.pipeline_create(
        actor=SYSTEM,
        slug="guarded",
        name="Guarded",
        input_guard=guard(mock_server, "guard-in"),
        model=endpoint(mock_server, "model-b"),
        output_guard=guard(mock_server, "guard-out"),
    )
    run = started_run(maintainer, [pipeline])

    run_collect(run_id=run.pk)

    responses = ModelResponse.objects.filter(run=run)
    outcomes = set(responses.values_list("outcome", flat=True))
    assert outcomes <= {"collected", "input_blocked", "output_blocked"}
    assert "input_blocked" in outcomes  # the mock guard flags ~30% of prompts
    # Each loop below checks rows that exist: every outcome the pipeline can give occurred.
    assert outcomes == {"collected", "input_blocked", "output_blocked"}
    for blocked in responses.filter(outcome="input_blocked"):
        assert blocked.text == ""
        assert blocked.input_guard["blocked"] is True
        assert blocked.input_guard["categories"]  # e.g. ["S6"]
        assert blocked.input_guard["raw"].startswith("unsafe")
        assert blocked.raw_reply is None  # the model was never called
    for blocked in responses.filter(outcome="output_blocked"):
        assert blocked.text == ""
        assert blocked.raw_reply is not None  # the model's reply kept as provenance only
        assert blocked.output_guard["blocked"] is True
    for passed in responses.filter(outcome="collected"):
        assert passed.input_guard["blocked"] is False
        assert passed.output_guard["blocked"] is False
        assert passed.text


def test_content_filter_and_empty_replies_are_their_own_outcomes(maintainer) -> None:
    config = MockServerConfig(latency_ms=2, rates=FaultRates(rate_content_filter=0.3, rate_empty=0.2))
    with MockServerThread(config) as server:
        QueryFactory.create_batch(60)
        run = started_run(maintainer, [endpoint(server, "model-c")])
        run_collect(run_id=run.pk)
        requests_made = server.stats()["requests"]
    responses = ModelResponse.objects.filter(run=run)
    filtered = responses.filter(outcome="content_filter")
    empty = responses.filter(outcome="empty")
    assert filtered.exists()
    assert empty.exists()
    assert all(r.text == "" and r.attempts == 1 for r in filtered)  # never retried, never an answer
    assert all(r.text == "" for r in empty)
    assert requests_made == 60  # no retries for either outcome


def test_missing_api_key_fails_the_run_with_the_variable_name(mock_server, maintainer, monkeypatch) -> None:
    monkeypatch.delenv("MEDHARM_KEY_TEST_MISSING", raising=False)
    QueryFactory.create_batch(3)
    run = started_run(maintainer, [endpoint(mock_server, "model-d", api_key_env="MEDHARM_KEY_TEST_MISSING")])

    run_collect(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "MEDHARM_KEY_TEST_MISSING" in run.failure_reason
    assert ModelResponse.objects.filter(run=run, state="pending").count() == 3


def test_a_settings_variable_saved_before_the_allow_list_is_never_sent(
    mock_server, maintainer, settings
) -> None:
    """Issue 8, leak 5: an endpoint saved earlier naming DJANGO_SECRET_KEY, or a host outside the
    operator's list, fails its run before any request leaves: the secret never becomes a token."""
    QueryFactory.create_batch(2)
    model = endpoint(mock_server, "model-s")
    Endpoint.objects.filter(pk=model.pk).update(api_key_env="DJANGO_SECRET_KEY")  # as saved before
    model.refresh_from_db()
    run = started_run(maintainer, [model])
    run_collect(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "DJANGO_SECRET_KEY is a setting of the platform itself" in run.failure_reason
    assert mock_server.stats()["requests"] == 0

    Endpoint.objects.filter(pk=model.pk).update(api_key_env="")
    model.refresh_from_db()
    settings.MODEL_HOSTS_ALLOWED = ["api.openai.com"]
    second = started_run(maintainer, [model])
    run_collect(run_id=second.pk)
    second.refresh_from_db()
    assert second.status == RunStatus.FAILED
    assert "is not in the operator's list of model hosts" in second.failure_reason
    assert mock_server.stats()["requests"] == 0


def test_pause_stops_and_resume_does_only_what_is_missing(mock_server, maintainer) -> None:
    QueryFactory.create_batch(10)
    run = started_run(maintainer, [endpoint(mock_server, "model-e")])
    services.run_pause(run=run, actor=maintainer)
    assert run_collect(run_id=run.pk) == 0  # a paused run is not collected

    # Finish half by hand as if an earlier worker had done them, then resume.
    first_half = list(ModelResponse.objects.filter(run=run).order_by("id").values_list("id", flat=True)[:5])
    ModelResponse.objects.filter(pk__in=first_half).update(
        state="finished", outcome="collected", text="earlier"
    )
    mock_server.reset()
    services.run_resume(run=run, actor=maintainer)  # dispatches in-process (eager), on commit

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert mock_server.stats()["requests"] == 5
    assert ModelResponse.objects.filter(pk__in=first_half, text="earlier").count() == 5


def test_run_create_refuses_a_guard_as_a_target_and_an_empty_selection(mock_server, maintainer) -> None:
    QueryFactory.create_batch(2)
    with pytest.raises(ValidationError, match="is a guard"):
        services.run_create(
            actor=maintainer, name="x", queries=Query.objects.all(), targets=[guard(mock_server, "g")]
        )
    with pytest.raises(ValidationError, match="no queries"):
        services.run_create(
            actor=maintainer, name="x", queries=Query.objects.none(), targets=[endpoint(mock_server, "m")]
        )
    assert CollectionRun.objects.count() == 0
