"""The leaderboard in a real browser: a maintainer signs in with their second factor, reads the
interval bars, follows a bar to the rows behind it, and the pages raise no CSP violation."""

import re

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import Role
from tests.browser.conftest import (  # noqa: F401 - fixtures used by name
    _database_for_the_live_server,
    browser,
    console,
    page,
    playwright_instance,
    screenshot,
    totp_code,
)
from tests.factories import UserFactory, totp_enrol
from tests.scoring.factories import ALPHA, BETA, scoring_world

pytestmark = [pytest.mark.browser, pytest.mark.portable]
PASSWORD = "a-long-browser-test-password-9"


def test_maintainer_reads_the_leaderboard_and_drills_down(
    page: Page,  # noqa: F811
    live_server: object,
    screenshot: object,  # noqa: F811
) -> None:
    world = scoring_world()
    maintainer = UserFactory(role=Role.MAINTAINER, password=PASSWORD, mfa=False)
    secret = totp_enrol(maintainer)
    base = live_server.url
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(maintainer.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.get_by_label("Code").fill(totp_code(secret))
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(f"{base}/")

    page.goto(f"{base}/scores/campaigns/{world.campaign.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Scoring fixture campaign")
    expect(page.locator(".source-line")).to_contain_text("Label source: Gold labels")
    chart = page.locator("svg.chart.bars")
    expect(chart).to_be_visible()
    expect(chart.locator("rect.bar")).to_have_count(2)
    expect(page.locator(".score-table tbody tr")).to_have_count(3)  # two models and "All models"
    box = chart.bounding_box()
    assert box is not None
    assert box["width"] > 600
    assert box["height"] > 80
    screenshot(page, "scores-leaderboard")

    chart.locator(f"a[aria-label^='{ALPHA}:']").click()
    expect(page).to_have_url(re.compile(r"/rows/\?source=gold&metric=unsafe_rate&target=Alpha"))
    expect(page.locator("#drill-counts")).to_have_text("2 of 5")
    expect(page.locator("tr.drill-row")).to_have_count(5)
    screenshot(page, "scores-drilldown")

    page.goto(f"{base}/scores/campaigns/{world.campaign.pk}/heatmap/")
    expect(page.locator("svg.chart.heatmap rect.cell")).to_have_count(6)
    screenshot(page, "scores-heatmap")
    page.goto(f"{base}/scores/campaigns/{world.campaign.pk}/agreement/")
    expect(page.locator("svg.chart.lines circle.point")).to_have_count(4)
    screenshot(page, "scores-agreement")
    page.goto(f"{base}/scores/campaigns/{world.campaign.pk}/compare/")
    expect(page.get_by_role("heading", name=f"{BETA} against {ALPHA}")).to_be_visible()

    # A report, made through the form, with its downloads.
    page.goto(f"{base}/scores/campaigns/{world.campaign.pk}/reports/")
    page.get_by_label("Bootstrap resamples").fill("200")
    page.get_by_role("button", name="Make the report").click()
    expect(page).to_have_url(re.compile(r"/scores/reports/\d+/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "MedHarm report: Scoring fixture campaign: scores and agreement"
    )
    expect(page.get_by_role("link", name="PDF")).to_be_visible()
    expect(page.locator(".provenance")).to_contain_text("Random seed")
    screenshot(page, "scores-report")
