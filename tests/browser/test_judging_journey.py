"""Issue 12's "done when" in a real browser: a maintainer opens a judge run over a collected run,
the audit of that judge against the clinicians (κ, the confusion matrix, the bias per model with
its intervals, ranking flips), imports a second judge's labels from a file and audits it the same
way, sets the thresholds for ``unsafe`` and marks the first judge trusted, and the leaderboard
switches to judge-assisted figures, saying which judge and audit they rest on."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import Role
from annotations.models import CampaignItem
from mockmodel.app import MockServerConfig
from mockmodel.runner import MockServerThread
from tests.browser.conftest import Screenshot
from tests.browser.test_journeys import PASSWORD, sign_in
from tests.factories import UserFactory, totp_enrol
from tests.judging.conftest import JudgingWorld, build_world

pytestmark = pytest.mark.browser


@pytest.fixture
def judged() -> Iterator[tuple[JudgingWorld, object, object]]:
    """30 queries x 3 mock models collected; the clinicians' labels of half of the responses
    (the audit sample; the other half judged only, for the judge-assisted rates); a lenient judge's
    run over everything: it calls the medical model's unsafe answers safe."""
    with MockServerThread(MockServerConfig(latency_ms=1)) as server:
        world = build_world(server)
        campaign = world.labelled_campaign()
        # Half by query (every model in each half), not by item: items are in the campaign's random
        # order (its seed), and a half drawn at random could hold no unsafe answer the lenient judge
        # gets right, so the audit's kappa (and the trust this test grants) depended on the draw
        # (failed once in a full run: kappa 0.0).
        unlabelled = (
            CampaignItem.objects.filter(campaign=campaign)
            .order_by("query_id", "response_id")
            .values_list("pk", flat=True)
        )
        CampaignItem.objects.filter(pk__in=list(unlabelled[:45])).update(gold_values=None, gold_source="")
        run = world.judged_run(world.judge("mock-judge-lenient", "harmbench-unsafe"))
        yield world, campaign, run


def test_maintainer_audits_two_judges_trusts_one_and_the_leaderboard_says_so(
    judged: tuple[JudgingWorld, object, object], page: Page, live_server: object, screenshot: Screenshot
) -> None:
    # ``judged`` comes first: it collects and judges with asyncio, before Playwright's loop runs.
    base = live_server.url
    _world, campaign, run = judged
    maintainer = UserFactory(role=Role.MAINTAINER, password=PASSWORD, mfa=False)
    secret = totp_enrol(maintainer)
    sign_in(page, base, maintainer, secret=secret)

    # (1) The judge run: every response judged once, parse failures counted (none here).
    page.goto(f"{base}/judges/")
    expect(page.get_by_role("heading", level=1)).to_have_text("LLM judges")
    page.get_by_role("link", name=run.name).click()
    expect(page.locator("#progress-heading")).to_have_text("Progress: completed")
    expect(page.locator("#judge-run-progress")).to_contain_text("90 of 90")
    expect(page.locator(".parse-failures")).to_have_text("0")
    screenshot(page, "judging-run")

    # (2) The audit against the clinicians, chosen on the judges' page.
    page.goto(f"{base}/judges/")
    page.get_by_label("Judge", exact=True).select_option(f"run:{run.pk}")
    page.get_by_label("Clinician labels of").select_option(str(campaign.pk))
    page.get_by_role("button", name="Open the audit").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Audit of mock-judge-lenient")
    expect(page.locator(".audit-n")).to_have_text("45")
    expect(page.locator("#confusion-heading")).to_be_visible()
    expect(page.locator(".chart-panel svg").first).to_be_visible()
    bias = page.locator(".bias-table")
    expect(bias).to_contain_text("mock-medical-model")
    expect(page.locator(".kendall")).to_be_visible()
    screenshot(page, "judging-audit")
    for panel in page.locator(".chart-panel").all():  # the charts fit their panels at 1366 px
        box, chart = panel.bounding_box(), panel.locator("svg").first.bounding_box()
        assert box is not None
        assert chart is not None
        assert chart["x"] + chart["width"] <= box["x"] + box["width"] + 1
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # (3) A second judge's labels, from a file: audited the same way.
    items = CampaignItem.objects.filter(campaign=campaign).select_related("response").order_by("pk")
    lines = ["judge,response,field,value"] + [
        f"gpt-external,{i.response_id},unsafe,{'true' if '[REDACTED]' in i.response.text else 'false'}"
        for i in items
    ]
    page.goto(f"{base}/judges/imports/")
    page.get_by_label("File").set_input_files(
        files=[{"name": "external.csv", "mimeType": "text/csv", "buffer": "\n".join(lines).encode()}]
    )
    page.get_by_label("Format").select_option("csv")
    screenshot(page, "judging-import")
    page.get_by_role("button", name="Import").click()
    expect(page.locator(".messages")).to_contain_text("Imported 90 labels of gpt-external.")
    page.goto(f"{base}/judges/")
    page.get_by_label("Judge", exact=True).select_option("external:gpt-external")
    page.get_by_label("Clinician labels of").select_option(str(campaign.pk))
    page.get_by_role("button", name="Open the audit").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit of gpt-external (imported)")
    expect(page.locator(".audit-figures")).to_contain_text("κ1.00 (1.00\u20131.00)")  # it agrees with them

    # (4) Thresholds for unsafe, then trust for the platform judge, checked against them.
    page.goto(f"{base}/judges/audit/?campaign={campaign.pk}&judge=run:{run.pk}&gold=gold&field=unsafe")
    page.get_by_label("Min kappa").fill("0.3")
    page.get_by_label("Max abs bias").fill("0.6")
    page.get_by_label("Min items").fill("30")
    page.get_by_role("button", name="Save thresholds").click()
    expect(page.locator(".messages")).to_contain_text("Thresholds for unsafe saved.")
    page.get_by_role("button", name="Trust this judge for unsafe").click()
    expect(page.locator(".messages")).to_contain_text("Trusted for unsafe: judge mock-judge-lenient")
    expect(page.locator(".notice.trusted")).to_contain_text("audited on 45 items")
    screenshot(page, "judging-trusted")

    # (5) The leaderboard uses judge-assisted figures for unsafe, and says on what they rest.
    page.goto(f"{base}/scores/campaigns/{campaign.pk}/")
    page.get_by_label("Label source").select_option("judge")
    page.get_by_role("button", name="Show").click()
    expect(page.locator(".source-line strong")).to_have_text("Label source: LLM judge")
    expect(page.locator(".judge-trust")).to_contain_text("Trusted judge for unsafe: judge mock-judge-lenient")
    assisted = page.locator("section", has=page.get_by_role("heading", name="Judge-assisted rates of unsafe"))
    expect(assisted).to_be_visible()
    expect(assisted).to_contain_text("Trusted judge for unsafe: judge mock-judge-lenient / harmbench-unsafe")
    expect(assisted).to_contain_text("audited on 45 items")
    expect(assisted.locator("tbody tr")).to_have_count(3)
    screenshot(page, "judging-leaderboard")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
