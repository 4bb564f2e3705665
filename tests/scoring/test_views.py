"""What the scoring pages show: the label source, charts with one bar or cell per figure, links to
the rows behind them, pseudonyms for adjudicators, and the threshold that flags annotators."""

import re
from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client

from audit.models import AuditEvent
from scoring.models import AnnotatorFlagThreshold
from tests.scoring.factories import ALPHA, BETA, ScoringWorld, scoring_world

pytestmark = pytest.mark.django_db


def _client(user: object) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _svg(html: str, css_class: str) -> str:
    match = re.search(rf'<svg [^>]*class="chart {css_class}".*?</svg>', html, re.S)
    assert match, f"no {css_class} chart"
    return match.group(0)


def _no_inline_code(html: str) -> None:
    assert re.search(r"\sstyle=", html) is None
    assert re.search(r"<script(?![^>]*\ssrc=)", html) is None  # only <script src=...>
    assert "<style" not in html


def test_leaderboard(world: ScoringWorld) -> None:
    html = _client(world.maintainer).get(f"/scores/campaigns/{world.campaign.pk}/").content.decode()
    _no_inline_code(html)
    assert "Label source: Gold labels" in html
    assert "8 of 8 labelled responses have a label under this source" in html
    assert re.search(r'<option value="judge">LLM judge</option>', html)
    chart = _svg(html, "bars")
    assert chart.count('class="bar"') == 2
    # Beta (1 of 4 unsafe) ranks above Alpha (2 of 5); each bar links to its rows.
    links = re.findall(r'<a href="([^"]+)" aria-label="([^"]+)"', chart)
    assert [label.split(":")[0] for _, label in links] == [BETA, ALPHA]
    query = parse_qs(urlparse(links[1][0].replace("&amp;", "&")).query)
    assert query == {"source": ["gold"], "metric": ["unsafe_rate"], "target": [ALPHA]}
    assert "2 of 5" in chart
    assert "1 of 4" in chart
    # The rows name each item's model: an adjudicator sees the same figures, without the links.
    adjudicator = _client(world.adjudicator).get(f"/scores/campaigns/{world.campaign.pk}/").content.decode()
    assert "2 of 5" in _svg(adjudicator, "bars")
    assert "/rows/" not in adjudicator
    for page in ("heatmap/", "compare/"):
        assert (
            "/rows/"
            not in _client(world.adjudicator)
            .get(f"/scores/campaigns/{world.campaign.pk}/{page}")
            .content.decode()
        )
    assert (
        "/rows/"
        in _client(world.maintainer).get(f"/scores/campaigns/{world.campaign.pk}/heatmap/").content.decode()
    )
    # The agreement page links no slice of one model for an adjudicator (that list is a 403).
    agreement = _client(world.adjudicator).get(f"/scores/campaigns/{world.campaign.pk}/agreement/")
    rows_links = re.compile(r'href="/scores/campaigns/\d+/agreement/rows/\?[^"]*model=')
    assert rows_links.search(agreement.content.decode()) is None
    maintainer = _client(world.maintainer).get(f"/scores/campaigns/{world.campaign.pk}/agreement/")
    assert rows_links.search(maintainer.content.decode()) is not None


def test_the_metric_and_source_change_the_figures(world: ScoringWorld) -> None:
    client = _client(world.adjudicator)
    html = client.get(
        f"/scores/campaigns/{world.campaign.pk}/?source=majority&metric=over_refusal_rate"
    ).content.decode()
    assert "Label source: Clinician majority" in html
    assert "7 of 8 labelled responses" in html
    chart = _svg(html, "bars")
    assert "1 of 1" in chart
    assert "0 of 1" in chart
    judge = client.get(f"/scores/campaigns/{world.campaign.pk}/?source=judge").content.decode()
    assert "judge labels are shown to maintainers only while the campaign is open" in judge
    assert 'class="chart' not in judge
    assert client.get(f"/scores/campaigns/{world.campaign.pk}/?metric=nonsense").status_code == 404


def test_heatmap_has_a_cell_per_model_and_category(world: ScoringWorld) -> None:
    html = _client(world.maintainer).get(f"/scores/campaigns/{world.campaign.pk}/heatmap/").content.decode()
    chart = _svg(html, "heatmap")
    assert chart.count('class="cell"') == 6  # 2 models x (2 categories + all)
    assert "Toxicology" in chart
    assert "All categories" in chart
    assert "category=toxicology" in chart


def test_drilldown_page(world: ScoringWorld) -> None:
    url = f"/scores/campaigns/{world.campaign.pk}/rows/?metric=unsafe_rate&target={ALPHA}"
    maintainer = _client(world.maintainer).get(url).content.decode()
    assert '<span id="drill-counts">2 of 5</span>' in maintainer
    assert maintainer.count('class="drill-row') == 5
    assert maintainer.count("in-numerator") == 2
    assert f"/collection/runs/{world.run.pk}/responses/{world.responses[(ALPHA, 4)].pk}/" in maintainer
    assert world.annotator_a.email in maintainer
    # The rows name the model of each item: an adjudicator, blind too, is refused (issue 8; this
    # test showed them the page with pseudonyms before), and the maintainer's look is audited.
    assert _client(world.adjudicator).get(url).status_code == 403
    assert AuditEvent.objects.filter(action="score_rows_unblind", actor=world.maintainer).count() == 1
    mean = _client(world.maintainer).get(url.replace("unsafe_rate", "harmfulness_mean")).content.decode()
    assert 'The mean of <span id="drill-counts">4</span> responses' in mean
    assert _client(world.maintainer).get(url + "&category=nowhere").status_code == 404


def test_compare_defaults_to_the_fine_tune_against_its_base(world: ScoringWorld) -> None:
    html = _client(world.maintainer).get(f"/scores/campaigns/{world.campaign.pk}/compare/").content.decode()
    assert f"{BETA} against {ALPHA}" in html
    assert "a fine-tune against the base model" in html
    assert html.count('<th scope="row">') == 3  # all categories, pharmacology, toxicology


def test_agreement_page_and_the_flag_threshold(world: ScoringWorld) -> None:
    client = _client(world.maintainer)
    url = f"/scores/campaigns/{world.campaign.pk}/agreement/"
    html = client.get(url).content.decode()
    _no_inline_code(html)
    pairs = _svg(html, "heatmap")
    assert pairs.count('class="cell"') == 2  # A-B and B-A
    assert "κ = 0.467" in pairs
    assert "8 shared items" in pairs
    drift = _svg(html, "lines")
    assert drift.count('class="point"') == 4  # two annotators x two weeks
    assert "No flag threshold is set" in html
    assert 'id="flagged"' not in html
    response = client.post(
        url + "threshold/",
        {"field_name": "", "statistic": "percent_agreement", "minimum": "0.8", "min_items": "5"},
    )
    assert response.status_code == 302
    stored = AnnotatorFlagThreshold.objects.get(campaign=world.campaign)
    assert (stored.minimum, stored.min_items, stored.set_by) == (0.8, 5, world.maintainer)
    event = AuditEvent.objects.get(action="agreement_threshold_set")
    assert event.actor == world.maintainer
    assert event.details["after"]["minimum"] == 0.8
    html = client.get(url).content.decode()
    assert re.search(
        r'id="flagged">1 annotator below the threshold: ' + re.escape(world.annotator_a.email), html
    )
    adjudicator = _client(world.adjudicator).get(url).content.decode()
    assert "1 annotator below the threshold: Annotator A." in adjudicator
    assert world.annotator_a.email not in adjudicator
    assert "Save the threshold" not in adjudicator


def test_agreement_drilldowns(world: ScoringWorld) -> None:
    client = _client(world.adjudicator)
    base = f"/scores/campaigns/{world.campaign.pk}/agreement/rows/?field=unsafe"
    pair = client.get(base + "&a=0&b=1").content.decode()
    assert pair.count('class="drill-row"') == 8
    # Adjudicators get the items without the model that wrote them, and not one model's items.
    assert '<th scope="col">Model</th>' not in pair
    assert ALPHA not in pair
    assert client.get(base + "&model=" + ALPHA).status_code == 403
    assert not AuditEvent.objects.filter(action="score_rows_unblind").exists()
    maintainer = _client(world.maintainer).get(base + "&model=" + ALPHA).content.decode()
    assert '<th scope="col">Model</th>' in maintainer
    assert maintainer.count('class="drill-row"') == 4  # Alpha's labelled items
    assert AuditEvent.objects.get(action="score_rows_unblind").details["view"] == "agreement_rows_page"
    gold = client.get(base + "&annotator=0").content.decode()
    assert '<span id="drill-counts">6 of 8</span>' in gold
    week = client.get(base + "&annotator=0&window=2025-03-10&by=week").content.decode()
    assert '<span id="drill-counts">3 of 4</span>' in week
    assert client.get(base + "&annotator=9").status_code == 404
    assert client.get(base.replace("unsafe", "rationale")).status_code == 404  # text fields have no agreement


def test_the_index_lists_campaigns_and_a_clinicians_closed_campaigns(world: ScoringWorld) -> None:
    html = _client(world.adjudicator).get("/scores/").content.decode()
    assert f"/scores/campaigns/{world.campaign.pk}/" in html
    clinician = _client(world.annotator_a).get("/scores/").content.decode()
    assert "No closed campaign yet." in clinician
    assert "Leaderboard" not in clinician


def test_your_agreement_names_each_chart_and_explains_kappa() -> None:
    world = scoring_world(close=True)
    page = _client(world.annotator_a).get(f"/scores/campaigns/{world.campaign.pk}/mine/").content.decode()
    headings = re.findall(r'<h2 id="drift-heading-(\w+)">([^<]+)</h2>', page)
    assert headings == [
        ("unsafe", "Unsafe: your agreement with gold over time"),
        ("behaviour", "Behaviour: your agreement with gold over time"),
        ("actionability", "Actionability: your agreement with gold over time"),
        ("harmfulness", "Harmfulness: your agreement with gold over time"),
        ("safe_helpfulness", "Safe helpfulness: your agreement with gold over time"),
    ]
    assert "0 is no better than chance" in page
