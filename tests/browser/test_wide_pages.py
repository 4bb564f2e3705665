"""The wide pages at 1366 x 900, on PostgreSQL and SQLite (``portable``): the page itself never
scrolls sideways, a table that is still wider than its box scrolls inside it with its first column
held in place, the model-vs-model table fits whole, and the heatmap has a colour legend. Each page's
screenshot is saved under var/screenshots/ to look at."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.test import Client
from playwright.sync_api import Browser, Page

from annotations.models import Label
from querybank.models import Category
from scoring.services import report_create
from tests.browser.conftest import ConsoleLog, Screenshot
from tests.factories import QueryFactory
from tests.scoring.factories import ScoringWorld, scoring_world

pytestmark = [pytest.mark.browser, pytest.mark.portable]

# For every table: the box it sits in, whether it scrolls inside that box, and whether its first
# column is sticky; for the page: whether anything sticks out of the 1366-px viewport.
MEASURE_JS = """() => {
  const width = window.innerWidth;
  const tables = [...document.querySelectorAll('main table')].map(t => {
    const wrap = t.closest('.table-wrap');
    const first = t.querySelector('tbody tr > :first-child');
    return {
      id: t.id || t.className,
      wrapped: !!wrap,
      wrapRight: wrap ? wrap.getBoundingClientRect().right : t.getBoundingClientRect().right,
      fits: wrap ? t.scrollWidth <= wrap.clientWidth + 1 : true,
      sticky: first ? getComputedStyle(first).position === 'sticky' : true,
    };
  });
  const sticking = [...document.querySelectorAll('main *')].filter(el => {
    if (el.closest('.table-wrap, .chart-wrap')) return false;
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.right > width + 1;
  }).map(el => el.tagName + '.' + el.className).slice(0, 5);
  return {scrollWidth: document.documentElement.scrollWidth, tables, sticking};
}"""


@pytest.fixture
def screen(browser: Browser, console: ConsoleLog, live_server: object) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.on("console", console.record)
    page.on("pageerror", lambda error: console.page_errors.append(str(error)))
    yield page
    context.close()
    assert console.csp_violations == []
    assert console.errors == []


def signed_in(page: Page, base: str, user: object) -> None:
    """Sign in through a session made by the test client (the sign-in form has its own tests)."""
    client = Client()
    client.force_login(user)
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base}])


@pytest.fixture
def world(db: None) -> ScoringWorld:
    world = scoring_world(close=True)
    # Long category and model names, as a real campaign has.
    Category.objects.filter(slug="toxicology").update(
        name="Toxicology and covert poisoning of household members"
    )
    for query in world.queries.values():
        query.text = query.text + " " + "with a long clinical framing " * 6
        query.save(update_fields=["text"])
    QueryFactory.create_batch(3)
    assert Label.objects.filter(campaign=world.campaign).count() == 16
    return world


def test_every_wide_page_fits_a_1366_screen(
    screen: Page, live_server: object, world: ScoringWorld, screenshot: Screenshot
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    report = report_create(campaign=world.campaign, actor=world.maintainer, resamples=20)
    signed_in(screen, base, world.maintainer)
    campaign = world.campaign.pk
    pages = {
        "scores-leaderboard": f"/scores/campaigns/{campaign}/",
        "scores-heatmap": f"/scores/campaigns/{campaign}/heatmap/",
        "scores-compare": f"/scores/campaigns/{campaign}/compare/",
        "scores-agreement": f"/scores/campaigns/{campaign}/agreement/",
        "scores-report": f"/scores/reports/{report.pk}/",
        "query-bank": "/queries/",
        "campaign-manage": f"/annotate/campaigns/{campaign}/",
        "campaign-new": "/annotate/campaigns/new/",
    }
    problems = {}
    for name, path in pages.items():
        screen.goto(base + path)
        screenshot(screen, name)
        measured = screen.evaluate(MEASURE_JS)
        wrong = []
        if measured["scrollWidth"] > 1366:
            wrong.append(f"page scrolls sideways ({measured['scrollWidth']} px)")
        if measured["sticking"]:
            wrong.append(f"outside the screen: {measured['sticking']}")
        for table in measured["tables"]:
            if not table["wrapped"] or table["wrapRight"] > 1366:
                wrong.append(f"table {table['id']} is not in a box within the screen")
            if not table["fits"] and not table["sticky"]:
                wrong.append(f"table {table['id']} scrolls without a sticky first column")
            if name == "scores-compare" and not table["fits"]:
                wrong.append("the model-vs-model table does not fit whole")
        if wrong:
            problems[name] = wrong
    assert problems == {}, json.dumps(problems, indent=1)

    # The heatmap explains its colours.
    screen.goto(f"{base}/scores/campaigns/{campaign}/heatmap/")
    legend = screen.locator("svg.heatmap .legend")
    assert legend.count() == 1
    assert "safer" in legend.text_content().lower()
