"""Maintainer flows through the collection pages with Django's test client: register endpoints and
pipelines, create runs with each selection kind, start/pause/resume/cancel, the htmx progress
partial, the response browser's filters and pages, and the streamed exports."""

import csv
import io
import json
import re
from collections import Counter
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from accounts.roles import Role
from audit.models import AuditEvent
from core.actors import SYSTEM
from evaluations import services
from evaluations.models import (
    CollectionRun,
    Endpoint,
    EndpointFamily,
    GuardFormat,
    ModelResponse,
    Pipeline,
    ResponseOutcome,
    RunStatus,
)
from evaluations.services.runs import ResponseResult, items_claim, items_finish
from mockmodel.app import MockServerConfig
from mockmodel.runner import MockServerThread
from querybank.models import Category, Query, QueryStatus
from tests.factories import QueryFactory, UserFactory

MOCK_URL = "http://127.0.0.1:9/v1"  # nothing listens: these tests never call a model


@pytest.fixture
def maintainer(db: None) -> User:
    return UserFactory(role=Role.MAINTAINER)


@pytest.fixture
def staff_client(client: Client, maintainer: User) -> Client:
    client.force_login(maintainer)
    return client


def make_endpoint(slug: str, **fields: object) -> Endpoint:
    values = {
        "slug": slug,
        "name": slug.replace("-", " ").title(),
        "base_url": MOCK_URL,
        "model_name": "mock-model",
    }
    return services.endpoint_create(actor=SYSTEM, **{**values, **fields})


def make_guard(slug: str = "guard") -> Endpoint:
    return make_endpoint(
        slug, model_name="mock-guard", family=EndpointFamily.GUARDRAIL, guard_format=GuardFormat.LLAMA_GUARD
    )


@pytest.fixture
def bank(db: None) -> dict[str, list[Query]]:
    """5 toxicology queries from source alpha, 3 pharmacology from beta, and a retired one (never sent)."""
    toxicology = Category.objects.get(slug="toxicology")
    pharmacology = Category.objects.get(slug="pharmacology")
    alpha = [QueryFactory(category=toxicology, source="alpha", external_id=f"a-{i}") for i in range(5)]
    beta = [QueryFactory(category=pharmacology, source="beta", external_id=f"b-{i}") for i in range(3)]
    QueryFactory(category=toxicology, source="alpha", external_id="a-retired", status=QueryStatus.RETIRED)
    return {"alpha": alpha, "beta": beta}


@pytest.fixture
def targets(db: None) -> dict[str, object]:
    general = make_endpoint("general-a")
    medical = make_endpoint("medical-b", family=EndpointFamily.MEDICAL, model_name="mock-medical-model")
    guard = make_guard()
    pipeline = services.pipeline_create(
        actor=SYSTEM, slug="guarded", name="Guarded", input_guard=guard, model=general, output_guard=guard
    )
    return {"general": general, "medical": medical, "guard": guard, "pipeline": pipeline}


def run_form_data(targets: dict[str, object], **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "Form run",
        "selection": "all",
        "category": "",
        "source": "",
        "external_ids": "",
        "endpoints": [targets["general"].pk, targets["medical"].pk],
        "pipelines": [targets["pipeline"].pk],
        "samples": 2,
        "temperature": "0.7",
        "top_p": "",
        "max_tokens": "200",
        "seed": "11",
        "system_prompt": "Answer as a careful clinician.",
        "concurrency": 8,
        "max_attempts": 3,
    }
    data.update(overrides)
    return data


def finish(run: CollectionRun, outcome_for: dict[int, str]) -> None:
    """Claim every item and finish it with the outcome its query id maps to (default: collected)."""
    claim = items_claim(run_id=run.pk, limit=10_000)
    results = []
    for item in claim.items:
        outcome = outcome_for.get(item.query_id, ResponseOutcome.COLLECTED)
        text = f"Reply {item.id} with safety framing." if outcome == ResponseOutcome.COLLECTED else ""
        reason = "HTTP 500 five times" if outcome == ResponseOutcome.ERROR else ""
        results.append(
            ResponseResult(id=item.id, outcome=outcome, text=text, cost=Decimal("0.001"), error_reason=reason)
        )
    items_finish(token=claim.token, results=results)


def messages_of(response: object) -> list[str]:
    return [str(m) for m in response.context["messages"]]  # type: ignore[attr-defined]


# ---- Registry ---------------------------------------------------------------------------------
def test_registering_an_endpoint_through_the_form_writes_the_row_and_an_audit_event(
    staff_client: Client, maintainer: User
) -> None:
    page = staff_client.get(reverse("evaluations:endpoint_create"))
    html = page.content.decode()
    for legend in ("Name", "Connection", "Model", "Limits", "Prices"):
        assert f"<legend>{legend}</legend>" in html
    assert "API key environment variable" in html
    assert 'name="api_key"' not in html  # only the variable's name is asked for, never a key

    response = staff_client.post(
        reverse("evaluations:endpoint_create"),
        {
            "name": "General model A",
            "slug": "general-a",
            "is_active": "on",
            "kind": "openai_chat",
            "base_url": "http://127.0.0.1:8765/v1",
            "api_key_env": "MEDHARM_KEY_MOCK",
            "timeout_seconds": "30",
            "model_name": "mock-model",
            "family": "general",
            "guard_format": "",
            "base_model": "",
            "default_parameters": '{"max_tokens": 400}',
            "max_concurrency": "16",
            "requests_per_minute": "600",
            "tokens_per_minute": "",
            "price_input_per_million": "1.5",
            "price_output_per_million": "6",
        },
        follow=True,
    )

    assert response.redirect_chain == [(reverse("evaluations:registry"), 302)]
    endpoint = Endpoint.objects.get(slug="general-a")
    assert (endpoint.base_url, endpoint.api_key_env, endpoint.model_name) == (
        "http://127.0.0.1:8765/v1",
        "MEDHARM_KEY_MOCK",
        "mock-model",
    )
    assert endpoint.default_parameters == {"max_tokens": 400}
    assert (endpoint.requests_per_minute, endpoint.tokens_per_minute) == (600, None)
    assert endpoint.price_output_per_million == Decimal("6")
    event = AuditEvent.objects.get(action="endpoint_create")
    assert (event.actor, event.target_id) == (maintainer, str(endpoint.pk))
    assert messages_of(response) == ["Registered the endpoint “General model A”."]
    registry = response.content.decode()
    assert 'id="endpoint-general-a"' in registry
    assert "<code>$MEDHARM_KEY_MOCK</code>" in registry


def test_a_guardrail_endpoint_without_a_verdict_format_is_refused_on_its_field(staff_client: Client) -> None:
    response = staff_client.post(
        reverse("evaluations:endpoint_create"),
        {
            "name": "Guard",
            "slug": "guard",
            "kind": "openai_chat",
            "base_url": "http://127.0.0.1:8765/v1",
            "timeout_seconds": "30",
            "model_name": "mock-guard",
            "family": "guardrail",
            "guard_format": "",
            "default_parameters": "{}",
            "max_concurrency": "4",
            "price_input_per_million": "0",
            "price_output_per_million": "0",
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "guard_format": ["A guardrail endpoint needs the format of its verdicts."]
    }
    assert Endpoint.objects.count() == 0
    assert AuditEvent.objects.filter(action="endpoint_create").count() == 0


def test_building_a_pipeline_through_the_form(staff_client: Client, maintainer: User) -> None:
    model = make_endpoint("general-a")
    guard = make_guard()
    form = staff_client.get(reverse("evaluations:pipeline_create")).context["form"]
    # Guards are offered only as guards, and the model list holds no guard.
    assert list(form.fields["input_guard"].queryset) == [guard]
    assert list(form.fields["model"].queryset) == [model]

    refused = staff_client.post(
        reverse("evaluations:pipeline_create"), {"name": "No guards", "slug": "none", "model": model.pk}
    )
    assert refused.context["form"].errors == {
        "input_guard": ["A pipeline needs an input guard, an output guard or both."]
    }

    response = staff_client.post(
        reverse("evaluations:pipeline_create"),
        {
            "name": "Guarded A",
            "slug": "guarded-a",
            "input_guard": guard.pk,
            "model": model.pk,
            "output_guard": "",
        },
        follow=True,
    )
    pipeline = Pipeline.objects.get()
    assert (pipeline.slug, pipeline.input_guard, pipeline.model, pipeline.output_guard) == (
        "guarded-a",
        guard,
        model,
        None,
    )
    assert AuditEvent.objects.get(action="pipeline_create").actor == maintainer
    assert messages_of(response) == ["Created the pipeline “Guarded A”."]
    assert 'id="pipeline-guarded-a"' in response.content.decode()


# ---- Creating runs ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("selection", "extra", "queries", "expected_selection"),
    [
        ("all", {}, 8, {"kind": "all"}),
        ("category", {"category": "pharmacology"}, 3, {"kind": "category", "category": "pharmacology"}),
        ("source", {"source": "alpha"}, 5, {"kind": "source", "source": "alpha"}),
        (
            "list",
            {"external_ids": "a-0, b-2\na-3\n\na-0"},
            3,
            {"kind": "list", "external_ids": ["a-0", "b-2", "a-3"]},
        ),
    ],
)
def test_creating_a_run_with_each_selection_kind_plans_exactly_the_items(
    staff_client: Client,
    bank: dict,
    targets: dict,
    selection: str,
    extra: dict,
    queries: int,
    expected_selection: dict,
) -> None:
    response = staff_client.post(
        reverse("evaluations:run_create"), run_form_data(targets, selection=selection, **extra)
    )

    run = CollectionRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("evaluations:run_detail", args=[run.pk])
    assert run.status == RunStatus.QUEUED  # "Create, start later"
    assert run.selection == expected_selection
    items = ModelResponse.objects.filter(run=run)
    assert items.count() == queries * 3 * 2  # queries x (2 endpoints + 1 pipeline) x 2 samples
    assert items.values("query").distinct().count() == queries
    assert not items.filter(query__status=QueryStatus.RETIRED).exists()
    assert run.parameters == {
        "temperature": 0.7,
        "max_tokens": 200,
        "seed": 11,
        "system_prompt": "Answer as a careful clinician.",
    }
    assert (run.samples, run.concurrency, run.max_attempts) == (2, 8, 3)
    assert sorted(run.targets.values_list("label", flat=True)) == ["General A", "Guarded", "Medical B"]


def test_the_run_form_offers_counts_and_refuses_unknown_ids_and_missing_targets(
    staff_client: Client, bank: dict, targets: dict
) -> None:
    html = staff_client.get(reverse("evaluations:run_create")).content.decode()
    assert "All active queries (8)" in html
    assert re.search(r'<option value="pharmacology">Pharmacology \(3\)</option>', html)
    assert '<option value="alpha">alpha (5)</option>' in html
    # A guard is no target on its own: only the two models and the pipeline are offered.
    assert html.count('name="endpoints"') == 2
    assert html.count('name="pipelines"') == 1

    unknown = staff_client.post(
        reverse("evaluations:run_create"),
        run_form_data(targets, selection="list", external_ids="a-1\nnope-1\na-retired"),
    )
    assert unknown.context["form"].errors == {
        "external_ids": ["No active query has these ids: nope-1, a-retired."]
    }
    no_targets = staff_client.post(
        reverse("evaluations:run_create"), run_form_data(targets, endpoints=[], pipelines=[])
    )
    assert no_targets.context["form"].non_field_errors() == ["Choose at least one model or pipeline."]
    missing_category = staff_client.post(
        reverse("evaluations:run_create"), run_form_data(targets, selection="category")
    )
    assert missing_category.context["form"].errors == {"category": ["Choose the category."]}
    assert CollectionRun.objects.count() == 0


# ---- Run actions ------------------------------------------------------------------------------
def test_start_pause_resume_and_cancel_by_post_change_the_status_with_a_message(
    staff_client: Client, bank: dict, targets: dict
) -> None:
    created = staff_client.post(reverse("evaluations:run_create"), run_form_data(targets), follow=True)
    assert messages_of(created) == ["Created the run “Form run”."]
    run = CollectionRun.objects.get()

    def act(action: str) -> list[str]:
        response = staff_client.post(reverse(f"evaluations:run_{action}", args=[run.pk]), follow=True)
        assert response.redirect_chain == [(reverse("evaluations:run_detail", args=[run.pk]), 302)]
        run.refresh_from_db()
        return messages_of(response)

    assert staff_client.get(reverse("evaluations:run_start", args=[run.pk])).status_code == 405
    assert act("start") == ["Run started."]
    assert run.status == RunStatus.RUNNING
    assert run.started_at is not None
    assert act("pause") == ["Run paused: items in flight finish, nothing new starts."]
    assert run.status == RunStatus.PAUSED
    assert act("resume") == ["Run resumed: only the missing items will be collected."]
    assert run.status == RunStatus.RUNNING
    assert act("cancel") == ["Run cancelled."]
    assert run.status == RunStatus.CANCELLED
    assert act("pause") == ["A cancelled run cannot be paused."]
    assert run.status == RunStatus.CANCELLED
    events = AuditEvent.objects.filter(target_type="evaluations.collectionrun", target_id=str(run.pk))
    actions = list(events.order_by("id").values_list("action", flat=True))
    assert actions == ["run_create", "run_start", "run_pause", "run_resume", "run_cancel"]


def test_cancelling_a_run_asks_first(staff_client: Client, bank: dict, targets: dict) -> None:
    staff_client.post(reverse("evaluations:run_create"), run_form_data(targets))
    run = CollectionRun.objects.get()
    staff_client.post(reverse("evaluations:run_start", args=[run.pk]))
    url = reverse("evaluations:run_cancel", args=[run.pk])
    page = staff_client.get(reverse("evaluations:run_detail", args=[run.pk])).content.decode()
    assert f'href="{url}" id="cancel-run"' in page  # a link to the question, not a one-click POST
    question = staff_client.get(url)
    assert question.status_code == 200
    assert f'<form method="post" action="{url}"' in question.content.decode()
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING


def test_the_run_page_offers_only_the_actions_its_status_allows(
    staff_client: Client, bank: dict, targets: dict
) -> None:
    staff_client.post(reverse("evaluations:run_create"), run_form_data(targets))
    run = CollectionRun.objects.get()
    url = reverse("evaluations:run_detail", args=[run.pk])

    def buttons() -> list[str]:
        html = staff_client.get(url).content.decode()
        # Actions are buttons that POST; cancelling is a link to its confirmation page.
        return re.findall(r'(?:action|href)="/collection/runs/\d+/((?!responses)[a-z-]+)/"', html)

    assert buttons() == ["start", "cancel"]
    services.run_start(run=run, actor=SYSTEM)
    assert buttons() == ["pause", "cancel"]
    services.run_pause(run=run, actor=SYSTEM)
    assert buttons() == ["resume", "cancel"]  # nothing failed, so nothing to retry
    services.run_resume(run=run, actor=SYSTEM)
    a_query = Query.objects.get(external_id="a-0")
    finish(run, {a_query.pk: ResponseOutcome.ERROR})  # 6 items of a-0 (3 targets x 2 samples) fail
    services.run_complete_if_done(run_id=run.pk)
    html = staff_client.get(url).content.decode()
    assert buttons() == ["retry-failed"]
    assert "Retry 6 failed items" in html
    response = staff_client.post(reverse("evaluations:run_retry_failed", args=[run.pk]), follow=True)
    assert messages_of(response) == ["6 failed items queued again."]
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    assert ModelResponse.objects.filter(run=run, state="pending").count() == 6
    services.run_cancel(run=run, actor=SYSTEM)
    assert buttons() == []


# ---- Progress ---------------------------------------------------------------------------------
def test_progress_partial_for_htmx_carries_the_bar_and_stops_polling_when_finished(
    staff_client: Client, bank: dict, targets: dict
) -> None:
    staff_client.post(
        reverse("evaluations:run_create"),
        run_form_data(targets, selection="source", source="beta", samples=1, pipelines=[]),
    )
    run = CollectionRun.objects.get()  # 3 queries x 2 endpoints = 6 items
    services.run_start(run=run, actor=SYSTEM)
    beta = Query.objects.filter(source="beta").order_by("pk")
    claim = items_claim(run_id=run.pk, limit=4)  # fair: the first 2 queries of each endpoint
    assert sorted(Counter(item.target_id for item in claim.items).values()) == [2, 2]
    claim.items.sort(key=lambda item: item.id)  # endpoint A: q0, q1; endpoint B: q0, q1
    items_finish(
        token=claim.token,
        results=[
            ResponseResult(
                id=item.id,
                outcome=ResponseOutcome.ERROR if item.query_id == beta[0].pk else ResponseOutcome.COLLECTED,
                text="ok",
                cost=Decimal("0.25"),
            )
            for item in claim.items[:3]
        ],
    )  # 3 finished (q0 of each endpoint in error), 1 in flight, 2 pending
    url = reverse("evaluations:run_detail", args=[run.pk])

    partial = staff_client.get(url + "?seen=running", HTTP_HX_REQUEST="true")
    html = partial.content.decode()
    assert [t.name for t in partial.templates] == ["evaluations/_run_progress.html"]
    assert "<html" not in html
    assert re.search(r'<progress id="run-progress-bar" class="run-bar" max="6" value="3"', html)
    assert 'hx-trigger="every 2s"' in html
    assert f'hx-get="{url}?seen=running"' in html
    assert "hx-swap-oob" not in html  # the status the page shows is still the status
    cells = dict(re.findall(r'data-outcome="(\w+)">.*?<td class="num">(\d+)</td>', html, re.S))
    assert cells == {
        "collected": "1",
        "empty": "0",
        "content_filter": "0",
        "input_blocked": "0",
        "output_blocked": "0",
        "error": "2",
        "in_flight": "1",
        "pending": "2",
    }
    assert f'href="{reverse("evaluations:response_list", args=[run.pk])}?outcome=error"' in html
    assert "$0.7500" in html  # cost so far: 3 finished x 0.25

    # The whole run finishes: the next poll returns the bar full, no trigger, and the new head.
    last = ResponseResult(id=claim.items[3].id, outcome=ResponseOutcome.EMPTY)
    items_finish(token=claim.token, results=[last])
    finish(run, {})
    services.run_complete_if_done(run_id=run.pk)
    done = staff_client.get(url + "?seen=running", HTTP_HX_REQUEST="true").content.decode()
    assert re.search(r'<progress id="run-progress-bar" class="run-bar" max="6" value="6"', done)
    assert "hx-trigger" not in done
    assert 'id="run-head" hx-swap-oob="true"' in done
    assert '<span class="tag tag-run-completed" id="run-status">Completed</span>' in done
    assert "/pause/" not in done

    full = staff_client.get(url)
    assert "evaluations/run_detail.html" in [t.name for t in full.templates]
    assert "hx-trigger" not in full.content.decode()


# ---- Response browser and exports -------------------------------------------------------------
@pytest.fixture
def finished_run(staff_client: Client, bank: dict, targets: dict) -> CollectionRun:
    """8 queries x 2 endpoints x 1 sample = 16 items; b-0 ends in error and b-1 empty everywhere."""
    staff_client.post(reverse("evaluations:run_create"), run_form_data(targets, samples=1, pipelines=[]))
    run = CollectionRun.objects.get()
    services.run_start(run=run, actor=SYSTEM)
    by_id = {q.external_id: q.pk for q in Query.objects.all()}
    finish(run, {by_id["b-0"]: ResponseOutcome.ERROR, by_id["b-1"]: ResponseOutcome.EMPTY})
    services.run_complete_if_done(run_id=run.pk)
    run.refresh_from_db()
    return run


def listed(client: Client, run: CollectionRun, query: str = "") -> tuple[int, list[str]]:
    html = client.get(reverse("evaluations:response_list", args=[run.pk]) + query).content.decode()
    count = int(re.search(r'id="result-count"><strong>(\d+)</strong>', html).group(1))
    return count, re.findall(r'data-outcome="(\w*)"', html)


def test_response_list_filters_give_exact_counts(staff_client: Client, finished_run: CollectionRun) -> None:
    general = finished_run.targets.get(label="General A")
    assert listed(staff_client, finished_run)[0] == 16
    assert listed(staff_client, finished_run, f"?target={general.pk}")[0] == 8
    assert listed(staff_client, finished_run, "?category=pharmacology")[0] == 6
    assert listed(staff_client, finished_run, "?category=toxicology")[0] == 10
    count, outcomes = listed(staff_client, finished_run, "?outcome=error")
    assert (count, outcomes) == (2, ["error", "error"])
    assert listed(staff_client, finished_run, "?outcome=empty")[0] == 2
    assert listed(staff_client, finished_run, "?outcome=collected&category=toxicology")[0] == 10
    assert listed(staff_client, finished_run, f"?outcome=error&target={general.pk}")[0] == 1
    assert listed(staff_client, finished_run, "?outcome=collected&category=pharmacology")[0] == 2
    assert listed(staff_client, finished_run, "?target=junk")[0] == 16  # an unusable filter is ignored


def test_response_pages_keep_the_filters(staff_client: Client, bank: dict, targets: dict) -> None:
    QueryFactory.create_batch(27, category=Category.objects.get(slug="toxicology"), source="gamma")
    staff_client.post(reverse("evaluations:run_create"), run_form_data(targets, samples=1, pipelines=[]))
    run = CollectionRun.objects.get()  # (8 + 27) x 2 = 70 items, 64 toxicology
    services.run_start(run=run, actor=SYSTEM)
    finish(run, {})
    url = reverse("evaluations:response_list", args=[run.pk])

    html = staff_client.get(url + "?category=toxicology&outcome=collected").content.decode()
    assert "64</strong> responses · showing 1\u201350" in html
    assert 'href="?category=toxicology&amp;outcome=collected&amp;page=2" rel="next"' in html
    second = staff_client.get(url + "?category=toxicology&outcome=collected&page=2").content.decode()
    assert "showing 51\u201364" in second
    assert second.count('data-category="toxicology"') == 14
    assert 'data-category="pharmacology"' not in second


def test_exports_stream_one_line_per_response_and_honour_the_filters(
    staff_client: Client, finished_run: CollectionRun
) -> None:
    jsonl = staff_client.get(reverse("evaluations:response_export", args=[finished_run.pk, "jsonl"]))
    assert jsonl.streaming
    assert jsonl["Content-Disposition"] == f'attachment; filename="run-{finished_run.pk}-responses.jsonl"'
    lines = b"".join(jsonl.streaming_content).decode().splitlines()
    assert len(lines) == 16
    records = [json.loads(line) for line in lines]
    assert sorted({r["outcome"] for r in records}) == ["collected", "empty", "error"]
    assert "api_key" not in lines[0]

    csv_response = staff_client.get(reverse("evaluations:response_export", args=[finished_run.pk, "csv"]))
    rows = list(csv.DictReader(io.StringIO(b"".join(csv_response.streaming_content).decode())))
    assert len(rows) == 16
    assert sum(row["outcome"] == "error" for row in rows) == 2

    filtered = staff_client.get(
        reverse("evaluations:response_export", args=[finished_run.pk, "jsonl"]) + "?outcome=error"
    )
    assert len(b"".join(filtered.streaming_content).decode().splitlines()) == 2
    xml = staff_client.get(reverse("evaluations:response_export", args=[finished_run.pk, "xml"]))
    assert xml.status_code == 404


def test_response_detail_shows_the_exact_request_raw_reply_guard_verdicts_and_failed_attempts(
    staff_client: Client, bank: dict, targets: dict
) -> None:
    staff_client.post(
        reverse("evaluations:run_create"),
        run_form_data(targets, selection="list", external_ids="a-0", samples=1, endpoints=[]),
    )
    run = CollectionRun.objects.get()
    services.run_start(run=run, actor=SYSTEM)
    claim = items_claim(run_id=run.pk, limit=1)
    item = claim.items[0]
    guard = {"model": "mock-guard", "endpoint": "guard", "attempts": 1, "errors": [], "error": None}
    items_finish(
        token=claim.token,
        results=[
            ResponseResult(
                id=item.id,
                outcome=ResponseOutcome.OUTPUT_BLOCKED,
                request={"body": {"model": "mock-model", "seed": 11}},
                resolved_model="mock-model-mock-1",
                raw_reply={"choices": [{"finish_reason": "stop"}]},
                attempts=2,
                finish_reason="stop",
                errors=[
                    {
                        "kind": "server_error",
                        "http_status": 503,
                        "error": "HTTP 503",
                        "body": "upstream overloaded",
                        "latency_ms": 12,
                        "retry_after_s": None,
                    }
                ],
                input_guard={
                    **guard,
                    "blocked": False,
                    "categories": [],
                    "raw": "safe",
                    "request": {"body": {"model": "mock-guard"}},
                },
                output_guard={
                    **guard,
                    "blocked": True,
                    "categories": ["S6"],
                    "raw": "unsafe\nS6",
                    "request": {},
                },
            )
        ],
    )

    html = staff_client.get(reverse("evaluations:response_detail", args=[run.pk, item.id])).content.decode()
    outcome_tag = (
        '<span class="tag tag-outcome-output_blocked" id="response-outcome">Blocked by output guard</span>'
    )
    assert outcome_tag in html
    assert "The output guard blocked the model's reply" in html
    assert "&quot;seed&quot;: 11" in html  # the exact request, pretty-printed JSON
    assert "&quot;finish_reason&quot;: &quot;stop&quot;" in html
    assert html.count('<span class="tag tag-verdict-allowed">Allowed</span>') == 1
    assert html.count('<span class="tag tag-verdict-blocked">Blocked</span>') == 1
    assert '<span class="tag tag-guard-category">S6</span>' in html
    assert "unsafe\nS6" in html
    assert "upstream overloaded" in html
    assert '<td class="num">503</td>' in html
    assert "<code>mock-model-mock-1</code>" in html

    other = UserFactory(role=Role.MAINTAINER)
    other_run = services.run_create(
        actor=other,
        name="other",
        targets=[targets["general"]],
        queries=Query.objects.filter(external_id="a-1"),
    )
    assert (
        staff_client.get(reverse("evaluations:response_detail", args=[other_run.pk, item.id])).status_code
        == 404
    )  # a response is looked up within its run


def test_run_list_shows_status_and_mini_progress(staff_client: Client, finished_run: CollectionRun) -> None:
    html = staff_client.get(reverse("evaluations:run_list")).content.decode()
    row = re.search(rf'<tr id="run-{finished_run.pk}">(.*?)</tr>', html, re.S).group(1)
    assert '<span class="tag tag-run-completed">Completed</span>' in row
    assert 'max="16" value="16"' in row
    assert "General A, Medical B" in row


# ---- The whole loop, collected for real -------------------------------------------------------
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_create_and_start_collects_every_item_from_the_mock_server(client: Client) -> None:
    maintainer = UserFactory(role=Role.MAINTAINER)
    client.force_login(maintainer)
    QueryFactory.create_batch(4, source="delta")
    with MockServerThread(MockServerConfig(latency_ms=5)) as server:
        model = services.endpoint_create(
            actor=SYSTEM,
            slug="general-a",
            name="General A",
            base_url=server.openai_base_url,
            model_name="mock-model",
        )
        response = client.post(
            reverse("evaluations:run_create"),
            {
                "name": "Live",
                "selection": "source",
                "source": "delta",
                "endpoints": [model.pk],
                "samples": 2,
                "concurrency": 4,
                "max_attempts": 2,
                "start": "1",
            },
        )
        # Tests run tasks eagerly: the collection ran when the request's transaction committed.
        run = CollectionRun.objects.get()
        assert response["Location"] == reverse("evaluations:run_detail", args=[run.pk])
        assert run.status == RunStatus.COMPLETED
        assert ModelResponse.objects.filter(run=run, outcome=ResponseOutcome.COLLECTED).count() == 8
        partial = client.get(
            reverse("evaluations:run_detail", args=[run.pk]) + "?seen=running", HTTP_HX_REQUEST="true"
        ).content.decode()
    assert re.search(r'max="8" value="8"', partial)
    assert "hx-trigger" not in partial
