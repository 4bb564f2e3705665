"""Issue 3's "done when" in a real browser: a maintainer registers two models, a guard and a guarded
pipeline on the mock model server through the web forms, starts a run, watches the bar fill while
the run is collected on a background thread of the live server, then reads the responses."""

import re
import time
from collections.abc import Iterator

import pytest
from django.conf import LazySettings
from playwright.sync_api import Page, Request, expect

from accounts.roles import Role
from evaluations.models import CollectionRun, ModelResponse, RunStatus
from mockmodel.app import MockServerConfig
from mockmodel.runner import MockServerThread
from querybank.models import Category
from tests.browser.conftest import Screenshot
from tests.browser.test_journeys import sign_in
from tests.factories import QueryFactory, UserFactory, totp_enrol

pytestmark = pytest.mark.browser

PASSWORD = "a-long-browser-test-password-7"
QUERIES = 20
TARGETS = 3  # two models and one pipeline


@pytest.fixture
def mock_server() -> Iterator[MockServerThread]:
    # 200 ms a call, two requests in flight: the run takes about ten seconds, several polls long.
    with MockServerThread(MockServerConfig(latency_ms=200, guard_unsafe_rate=0.25)) as server:
        yield server


@pytest.fixture
def collect_in_thread(settings: LazySettings) -> None:
    """Collect beside the live server, as the embedded default does, so the page can watch it."""
    settings.COLLECTION_DISPATCH_IN_THREAD = True


def register_endpoint(page: Page, base: str, shot: Screenshot | None = None, **fields: str) -> None:
    page.goto(f"{base}/collection/registry/")
    page.get_by_role("link", name="Register an endpoint").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Register an endpoint")
    page.get_by_label("Name", exact=True).fill(fields["name"])
    page.get_by_label("Short name").fill(fields["slug"])
    page.get_by_label("Base URL").fill(fields["base_url"])
    page.get_by_label("Model name").fill(fields["model"])
    page.get_by_label("Family").select_option(fields.get("family", "general"))
    if "guard_format" in fields:
        page.get_by_label("Guard verdict format").select_option(fields["guard_format"])
    if "base_model" in fields:
        page.get_by_label("Fine-tuned from").select_option(label=fields["base_model"])
    page.get_by_label("Requests in flight at most").fill("8")
    page.get_by_label("Input price per million tokens").fill("1.5")
    page.get_by_label("Output price per million tokens").fill("6")
    if shot is not None:
        shot(page, "collection-endpoint-form")
    page.get_by_role("button", name="Register the endpoint").click()
    expect(page).to_have_url(f"{base}/collection/registry/")
    expect(page.locator(".messages")).to_contain_text(f"Registered the endpoint “{fields['name']}”.")


def test_maintainer_registers_models_starts_a_run_and_watches_it_fill(
    page: Page,
    live_server: object,
    mock_server: MockServerThread,
    collect_in_thread: None,
    screenshot: Screenshot,
) -> None:
    base = live_server.url
    toxicology = Category.objects.get(slug="toxicology")
    pharmacology = Category.objects.get(slug="pharmacology")
    for i in range(QUERIES):
        QueryFactory(
            category=toxicology if i % 3 else pharmacology,
            source="browser-demo",
            external_id=f"demo-{i:03d}",
            text=f"Synthetic demo question {i} asking where to find general safety guidance.",
        )
    maintainer = UserFactory(role=Role.MAINTAINER, password=PASSWORD, mfa=False)
    secret = totp_enrol(maintainer)

    sign_in(page, base, maintainer, secret=secret)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Collection").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Collection runs")
    page.get_by_role("link", name="Model registry").first.click()
    expect(page.locator("#endpoints .empty")).to_contain_text("No endpoints yet")

    # (1) The registry, through the forms: two models, a guard, and a pipeline around the first model.
    url = mock_server.openai_base_url
    register_endpoint(page, base, name="General model A", slug="general-a", base_url=url, model="mock-model")
    register_endpoint(
        page,
        base,
        name="Medical model B",
        slug="medical-b",
        base_url=url,
        model="mock-medical-model",
        family="medical",
        base_model="General model A · mock-model",
    )
    register_endpoint(
        page,
        base,
        screenshot,
        name="Guard L",
        slug="guard-l",
        base_url=url,
        model="mock-guard",
        family="guardrail",
        guard_format="llama_guard",
    )
    page.get_by_role("link", name="Build a guardrail pipeline").click()
    page.get_by_label("Name", exact=True).fill("General A behind Guard L")
    page.get_by_label("Short name").fill("general-a-guarded")
    page.get_by_label("Input guard").select_option(label="Guard L · mock-guard")
    page.get_by_label("Model", exact=True).select_option(label="General model A · mock-model")
    page.get_by_label("Output guard").select_option(label="Guard L · mock-guard")
    page.get_by_role("button", name="Create the pipeline").click()
    expect(page.locator(".messages")).to_contain_text("Created the pipeline “General A behind Guard L”.")
    expect(page.locator("#endpoints tbody tr")).to_have_count(3)
    expect(page.locator("#endpoint-medical-b")).to_contain_text("Fine-tune of General model A")
    expect(page.locator("#pipeline-general-a-guarded .stage")).to_have_text(
        ["Input guard Guard L", "Model General model A", "Output guard Guard L"]
    )
    screenshot(page, "collection-registry")

    # (2) A run over the demo source: every query to both models and the pipeline.
    page.get_by_role("link", name="New collection run").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New collection run")
    page.get_by_label("Name", exact=True).fill("Browser demo run")
    expect(page.get_by_label("Source", exact=True)).to_be_hidden()  # only the chosen selection's detail shows
    page.get_by_label("One source").check()
    page.get_by_label("Source", exact=True).select_option("browser-demo")
    page.get_by_label("General model A · mock-model").check()
    page.get_by_label("Medical model B · mock-medical-model").check()
    page.get_by_label("General A behind Guard L · mock-guard → mock-model → mock-guard").check()
    page.get_by_label("Temperature").fill("0.7")
    page.get_by_label("Seed").fill("7")
    page.get_by_label("Requests in flight", exact=True).fill("2")
    page.get_by_label("Attempts per item").fill("3")
    screenshot(page, "collection-run-form")

    polls: list[str] = []

    def count_polls(request: Request) -> None:
        if request.headers.get("hx-request") == "true" and "/collection/runs/" in request.url:
            polls.append(request.url)

    page.on("request", count_polls)
    page.get_by_role("button", name="Create and start").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Browser demo run")
    bar = page.locator("#run-progress-bar")
    total = QUERIES * TARGETS
    expect(bar).to_have_attribute("max", str(total))

    # (3) The bar fills: sample it while the run goes; every sample is at least the one before.
    seen: list[int] = []
    mid_run_shot = False
    started = time.monotonic()
    while time.monotonic() < started + 90:
        value = int(bar.get_attribute("value") or 0)
        if value == 0 and time.monotonic() > started + 20:
            pytest.fail("nothing was collected within 20 s: the run never reached a collector thread")
        if not seen or value != seen[-1]:
            seen.append(value)
        if not mid_run_shot and total * 0.2 <= value <= total * 0.8:
            screenshot(page, "collection-run-mid")
            mid_run_shot = True
        if value == total and page.locator("#run-status").inner_text() == "Completed":
            break
        page.wait_for_timeout(300)
    assert seen == sorted(seen), f"the bar went backwards: {seen}"
    assert seen[-1] == total, f"the bar stopped at {seen[-1]} of {total}: {seen}"
    assert len([v for v in seen if 0 < v < total]) >= 2, f"too few intermediate values: {seen}"
    assert mid_run_shot
    expect(page.locator("#run-status")).to_have_text("Completed")
    expect(page.locator("#progress-summary")).to_contain_text(f"{total} of {total} items finished · 100%")
    # The head was swapped with the status: a completed run offers no Pause or Cancel any more.
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel the run")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Retry"))).to_have_count(0)  # nothing failed
    # Polling stopped with the run.
    polls_at_end = len(polls)
    assert polls_at_end >= 2
    page.wait_for_timeout(4500)
    assert len(polls) == polls_at_end
    screenshot(page, "collection-run-completed")

    run = CollectionRun.objects.get(name="Browser demo run")
    assert run.status == RunStatus.COMPLETED
    assert ModelResponse.objects.filter(run=run).count() == total
    assert ModelResponse.objects.filter(run=run, state="finished").count() == total
    counts = {
        row.get_attribute("data-outcome"): int(row.locator("td.num").first.inner_text())
        for row in page.locator(".outcome-table tbody tr").all()
    }
    assert sum(counts.values()) == total
    assert counts["pending"] == counts["in_flight"] == 0
    for outcome in ("collected", "empty", "content_filter", "input_blocked", "output_blocked", "error"):
        assert ModelResponse.objects.filter(run=run, outcome=outcome).count() == counts[outcome]

    # (4) The response browser, from the outcome table's link, then filtered by target.
    page.locator(".outcome-table").get_by_role("link", name="Collected").click()
    collected = re.compile(rf"^\s*{counts['collected']} responses?\s*$")
    expect(page.locator("#result-count")).to_have_text(collected)
    expect(page.get_by_label("Outcome")).to_have_value("collected")
    page.get_by_label("Outcome").select_option("")
    page.get_by_label("Target").select_option(label="General A behind Guard L")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#result-count")).to_have_text(re.compile(rf"^\s*{QUERIES} responses\s*$"))
    expect(page.locator(".response-table tbody tr")).to_have_count(QUERIES)
    screenshot(page, "collection-responses")

    # (5) A response of the pipeline that reached the model: request, reply, both guards' verdicts.
    guarded = (
        ModelResponse.objects.filter(
            run=run, target__label="General A behind Guard L", output_guard__isnull=False
        )
        .order_by("id")
        .first()
    )
    assert guarded is not None
    page.get_by_role("link", name=f"Response {guarded.pk}", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Response {guarded.pk}")
    expect(page.get_by_role("region", name="Input guard")).to_contain_text("Allowed")
    expect(page.get_by_role("region", name="Output guard")).to_contain_text("mock-guard")
    expect(page.locator("#request-json")).to_contain_text('"temperature": 0.7')
    expect(page.locator("#request-json")).to_contain_text(guarded.query.text)
    expect(page.locator("#raw-reply-json")).to_contain_text('"choices"')
    expect(page.get_by_role("region", name="Provenance")).to_contain_text(guarded.resolved_model)
    screenshot(page, "collection-response-detail")

    # (6) The run list shows the run complete.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Collection").click()
    row = page.locator(f"#run-{run.pk}")
    expect(row.locator(".tag")).to_have_text("Completed")
    expect(row.locator("progress")).to_have_attribute("value", str(total))
    expect(row.locator(".progress-count")).to_have_text(f"{total} / {total}")
    screenshot(page, "collection-run-list")
