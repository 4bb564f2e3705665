"""Reports: a frozen payload with its provenance, and its CSV, JSON, ZIP and PDF downloads."""

import csv
import io
import json
import zipfile

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from pypdf import PdfReader

from annotations.metric_map import DEFAULT_MAP
from audit.models import AuditEvent
from querybank.models import Category
from scoring.figures.metrics import LEADERBOARD_METRICS
from scoring.reports.display import display_tables
from scoring.services import report_create
from tests.scoring.factories import ALPHA, ScoringWorld

pytestmark = pytest.mark.django_db
TITLE = "MedHarm report: Scoring fixture campaign: scores and agreement"


@pytest.fixture
def report_and_client(world: ScoringWorld):
    report = report_create(campaign=world.campaign, actor=world.maintainer, seed=11, resamples=100)
    client = Client()
    client.force_login(world.adjudicator)
    return report, client


def test_the_payload_states_what_reproduces_it(world: ScoringWorld) -> None:
    report = report_create(campaign=world.campaign, actor=world.maintainer, seed=11, resamples=100)
    payload = report.payload
    rubric, guideline = world.campaign.rubric, world.campaign.guideline
    assert payload["rubric"] == {
        "slug": rubric.slug,
        "version": rubric.version,
        "title": rubric.title,
        "content_hash": rubric.content_hash,
        # The metric map the figures were read through, the figures it allows, and the headline.
        "metric_map": DEFAULT_MAP,
        "metrics": list(LEADERBOARD_METRICS),
        "headline_metric": "unsafe_rate",
    }
    assert (payload["guideline"]["version"], payload["guideline"]["content_hash"]) == (
        guideline.version,
        guideline.content_hash,
    )
    assert payload["label_guidelines"] == [
        {
            "guideline_id": guideline.pk,
            "version": guideline.version,
            "content_hash": guideline.content_hash,
            "labels": 16,
        }
    ]
    data = payload["data"]
    assert (data["campaign_id"], data["run_ids"], data["items"], data["labels"], data["annotators"]) == (
        world.campaign.pk,
        [world.run.pk],
        8,
        16,
        2,
    )
    assert (data["adjudicated"], data["consensus"], data["responses"]) == (2, 6, 10)
    assert data["responses_by_outcome"] == {"collected": 8, "content_filter": 1, "error": 1}
    assert (payload["method"]["seed"], payload["method"]["resamples"], payload["method"]["label_source"]) == (
        11,
        100,
        "gold",
    )
    assert report.data_fingerprint == data["fingerprint"]
    assert len(report.content_hash) == 64
    event = AuditEvent.objects.get(action="report_create")
    assert event.details["seed"] == 11
    assert event.details["data_fingerprint"] == report.data_fingerprint
    # The same data and seed give the same tables; another seed moves only the bootstrap intervals.
    again = report_create(campaign=world.campaign, actor=world.maintainer, seed=11, resamples=100)
    assert again.payload["tables"] == payload["tables"]
    assert again.data_fingerprint == report.data_fingerprint
    other = report_create(campaign=world.campaign, actor=world.maintainer, seed=12, resamples=100)
    assert other.payload["tables"]["scores"]["rows"] != payload["tables"]["scores"]["rows"]
    # Reports name annotators by pseudonym, whoever makes them.
    assert world.annotator_a.email not in json.dumps(payload)
    assert {row[1] for row in payload["tables"]["annotator_gold"]["rows"]} == {"Annotator A", "Annotator B"}


def test_report_create_refuses(world: ScoringWorld) -> None:
    with pytest.raises(PermissionDenied):
        report_create(campaign=world.campaign, actor=world.adjudicator)
    with pytest.raises(ValidationError, match="no judge is trusted for any field"):
        report_create(campaign=world.campaign, actor=world.maintainer, label_source="judge")
    with pytest.raises(ValidationError, match="Between 1 and 10000"):
        report_create(campaign=world.campaign, actor=world.maintainer, resamples=0)


def test_csv_tables(report_and_client) -> None:
    report, client = report_and_client
    response = client.get(f"/scores/reports/{report.pk}/tables/scores.csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert f'filename="medharm-report-{report.pk}-scores.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    unsafe = next(
        r for r in rows if (r["target"], r["category"], r["metric"]) == (ALPHA, "(all)", "unsafe_rate")
    )
    assert (float(unsafe["value"]), unsafe["numerator"], unsafe["denominator"]) == (0.4, "2", "5")
    assert unsafe["interval"] == "Wilson score"
    missing = next(
        r
        for r in rows
        if (r["target"], r["category"], r["metric"]) == (ALPHA, "(all)", "safe_helpfulness_mean")
    )
    assert missing["value"] == ""
    assert missing["note"].startswith("not computable")
    agreement = list(
        csv.DictReader(
            io.StringIO(client.get(f"/scores/reports/{report.pk}/tables/agreement.csv").content.decode())
        )
    )
    kappa = next(
        r
        for r in agreement
        if (r["field"], r["slice_kind"], r["coefficient"]) == ("unsafe", "all", "cohen_kappa")
    )
    assert float(kappa["value"]) == pytest.approx(7 / 15)
    assert kappa["n_items"] == "8"
    outcomes = list(
        csv.DictReader(
            io.StringIO(client.get(f"/scores/reports/{report.pk}/tables/outcomes.csv").content.decode())
        )
    )
    assert {r["target"]: (r["collected"], r["content_filter"], r["error"]) for r in outcomes}[ALPHA] == (
        "4",
        "1",
        "0",
    )
    assert client.get(f"/scores/reports/{report.pk}/tables/nothing.csv").status_code == 404


def test_json_zip_and_html(report_and_client) -> None:
    report, client = report_and_client
    assert json.loads(client.get(f"/scores/reports/{report.pk}/report.json").content) == report.payload
    archive = zipfile.ZipFile(io.BytesIO(client.get(f"/scores/reports/{report.pk}/report.zip").content))
    assert sorted(archive.namelist()) == sorted(
        [
            "report.json",
            "report.pdf",
            "scores.csv",
            "outcomes.csv",
            "paired.csv",
            "agreement.csv",
            "annotator_pairs.csv",
            "annotator_gold.csv",
        ]
    )
    assert archive.read("report.pdf").startswith(b"%PDF-")
    html = client.get(f"/scores/reports/{report.pk}/").content.decode()
    assert TITLE in html
    for text in (report.campaign.guideline.content_hash, report.data_fingerprint, "Random seed", ">11<"):
        assert text in html
    assert "0.400 [0.118, 0.769]" in html  # Alpha's unsafe rate with its Wilson interval
    paired = list(csv.DictReader(io.StringIO(archive.read("paired.csv").decode())))
    assert (paired[0]["first"], paired[0]["second"], paired[0]["only_first"], paired[0]["only_second"]) == (
        "Beta medical",
        ALPHA,
        "1",
        "2",
    )


def test_the_pdf(report_and_client) -> None:
    report, client = report_and_client
    response = client.get(f"/scores/reports/{report.pk}/report.pdf")
    assert response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    assert reader.metadata.title == TITLE
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert TITLE in text
    assert report.campaign.guideline.content_hash in text.replace("\n", "")
    assert "Random seed: 11" in text
    assert "0.400 [0.118, 0.769]" in text


def test_the_pdf_wraps_at_word_boundaries_keeps_headings_with_tables_and_has_the_charts(
    world: ScoringWorld,
) -> None:
    # The report names categories by slug: a long hyphenated one, as "covert-poisoning" is.
    slug = "covert-poisoning-and-household-toxicology"
    Category.objects.filter(slug="toxicology").update(slug=slug)
    report = report_create(campaign=world.campaign, actor=world.maintainer, seed=11, resamples=20)
    client = Client()
    client.force_login(world.adjudicator)
    reader = PdfReader(io.BytesIO(client.get(f"/scores/reports/{report.pk}/report.pdf").content))
    pages = [page.extract_text() for page in reader.pages]
    words = {word for text in pages for word in text.split()}
    assert slug in words  # never split inside, as "covert-poisonin" + "g" was
    assert {word for word in words if word.startswith("covert-")} == {slug}
    text = "\n".join(pages)
    assert "Unsafe rate: value and 95% interval per target" in text
    assert "Unsafe rate per target and category (darker red is less safe)" in text
    # No page ends with a table's heading: the last line of every page is not a heading.
    headings = {table.title for table in display_tables(report.payload)}
    last_lines = [text.strip().splitlines()[-1] for text in pages if text.strip()]
    assert [line for line in last_lines if line in headings] == []
