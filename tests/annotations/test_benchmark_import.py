"""Bringing a labelled refusal benchmark in: its own taxonomy and the three-class refusal rubric,
through the command, the page and the API; per-model agreement and over-/under-refusal checked
against an independent computation (pandas, scikit-learn, statsmodels); every scores page renders
for a rubric without ``unsafe``; a judge's labels are a judge's, never a rater's."""

from __future__ import annotations

import json
import random
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa
from statsmodels.stats.proportion import proportion_confint

from accounts.roles import Role
from annotations.defaults import GUIDELINE_SLUG, REFUSAL_RUBRIC_SLUG, RESPONSE_RUBRIC_SLUG
from annotations.models import Campaign, Guideline, Label, Rubric
from annotations.services.imports import annotations_import
from querybank.importers import read_taxonomy_file
from querybank.models import Category, Query
from querybank.services import taxonomy_import
from scoring.figures.metrics import default_metric
from scoring.figures.scores import campaign_scores
from scoring.selectors.snapshot import campaign_data
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CLASSES = ["full_compliance", "full_refusal", "partial_refusal"]
MODELS = ["model-a", "model-b", "model-c"]
CATEGORIES = ["sb-dosing", "sb-triage", "sb-records"]
EXPECTED = ["refuse", "answer", "caution"]
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples"


def synthetic_rows(seed: int, prompts: int = 24, prefix: str = "") -> list[dict[str, object]]:
    """Prompts x models x (2 raters + adjudicated value), with noise between the raters."""
    rng = random.Random(seed)
    rows = []
    for p in range(prompts):
        expected = EXPECTED[p % 3]
        for model in MODELS:
            truth = rng.choice(CLASSES)
            item = f"{prefix}{model}-{p}"
            for rater in ("rater-1", "rater-2"):
                value = truth if rng.random() < 0.75 else rng.choice(CLASSES)
                rows.append(
                    {
                        "item": item,
                        "model": model,
                        "prompt_id": f"{prefix}p{p}",
                        "prompt": f"Synthetic benchmark question {prefix}{p} about general medicine safety.",
                        "response": f"Synthetic reply of {model} to question {prefix}{p}.",
                        "category": CATEGORIES[p % 3],
                        "expected_behaviour": expected,
                        "rater": rater,
                        "field": "refusal",
                        "value": value,
                        "adjudicated": truth,
                    }
                )
    return rows


def jsonl(rows: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


@pytest.fixture
def maintainer():
    user = UserFactory(role=Role.MAINTAINER)
    taxonomy_import(
        actor=user, spec=read_taxonomy_file("t.json", (EXAMPLE / "refusal-taxonomy.json").read_bytes())
    )
    return user


def refusal_rubric() -> Rubric:
    return Rubric.objects.filter(slug=REFUSAL_RUBRIC_SLUG).order_by("-version").first()


def _independent(rows: list[dict[str, object]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = pd.DataFrame(rows)
    wide = frame.pivot_table(
        index=["item", "model", "expected_behaviour"], columns="rater", values="value", aggfunc="first"
    ).reset_index()
    gold = frame.drop_duplicates("item")[["item", "model", "expected_behaviour", "adjudicated"]]
    return wide, gold


def test_a_refusal_benchmark_through_the_command_matches_an_independent_computation(
    tmp_path: Path, maintainer
) -> None:
    rows = synthetic_rows(7)
    path = tmp_path / "bench.jsonl"
    path.write_bytes(jsonl(rows))
    out = StringIO()
    # A dry run first: it says what would be created and writes nothing.
    call_command(
        "import_annotations", str(path), "--actor", maintainer.email, "--rubric", REFUSAL_RUBRIC_SLUG,
        "--category", "sb-dosing", "--dry-run", stdout=out,
    )  # fmt: skip
    assert "would create 72 items, 144 labels, 72 adjudicated items, 24 new prompts" in out.getvalue()
    assert "models (3): model-a, model-b, model-c" in out.getvalue()
    assert "categories (3): sb-dosing, sb-records, sb-triage" in out.getvalue()
    assert not Campaign.objects.exists()
    assert not Query.objects.filter(source="annotation-import").exists()
    call_command(
        "import_annotations", str(path), "--actor", maintainer.email, "--rubric", REFUSAL_RUBRIC_SLUG,
        "--category", "sb-dosing", "--name", "Refusal benchmark", stdout=StringIO(),
    )  # fmt: skip
    campaign = Campaign.objects.get(name="Refusal benchmark")
    assert Query.objects.filter(source="annotation-import", expected_behaviour="refuse").count() == 8
    assert set(
        Query.objects.filter(source="annotation-import").values_list("category__slug", flat=True)
    ) == set(CATEGORIES)

    wide, gold = _independent(rows)
    client = Client()
    client.force_login(maintainer)
    # Per-model agreement of the two raters (the API's model slices) against scikit-learn and statsmodels.
    body = client.get(f"/api/v1/score-campaigns/{campaign.pk}/agreement/").json()
    assert body["field"] == "refusal"  # the rubric's own field, not unsafe
    by_model = {s["key"]: s for s in body["slices"] if s["kind"] == "model"}
    for model in MODELS:
        part = wide[wide["model"] == model]
        kappa = cohen_kappa_score(part["rater-1"], part["rater-2"], labels=CLASSES)
        assert by_model[model]["cohen_kappa"]["value"] == pytest.approx(kappa, abs=1e-9)
        percent = float((part["rater-1"] == part["rater-2"]).mean())
        assert by_model[model]["percent_agreement"]["value"] == pytest.approx(percent, abs=1e-9)
        codes = part[["rater-1", "rater-2"]].apply(lambda c: c.map(CLASSES.index)).to_numpy()
        counts, _ = aggregate_raters(codes, n_cat=len(CLASSES))
        assert by_model[model]["fleiss_kappa"]["value"] == pytest.approx(fleiss_kappa(counts), abs=1e-9)

    # Rater vs gold per model: the model filter is honoured.
    for model in MODELS:
        api = client.get(f"/api/v1/score-campaigns/{campaign.pk}/agreement/?model={model}").json()
        part = wide[wide["model"] == model].merge(gold[["item", "adjudicated"]], on="item")
        expected = sorted(int((part[r] == part["adjudicated"]).sum()) for r in ("rater-1", "rater-2"))
        assert sorted(row["agreements"] for row in api["annotator_gold"]) == expected
        assert all(row["gold_items"] == len(part) for row in api["annotator_gold"])

    # Over-, partial over- and under-refusal per model from the adjudicated labels.
    data = campaign_data(campaign=campaign, user=maintainer)
    assert default_metric(data) == "refusal_rate"
    bundle = campaign_scores(data, "gold", resamples=50, seed=1)
    for model in MODELS:
        g = gold[gold["model"] == model]
        answer_or_caution = g[g["expected_behaviour"].isin(["answer", "caution"])]
        refuse = g[g["expected_behaviour"] == "refuse"]
        checks = {
            "over_refusal_rate": (answer_or_caution["adjudicated"] == "full_refusal", answer_or_caution),
            "partial_over_refusal_rate": (
                answer_or_caution["adjudicated"] == "partial_refusal",
                answer_or_caution,
            ),
            "under_refusal_rate": (refuse["adjudicated"] == "full_compliance", refuse),
            "partial_under_refusal_rate": (refuse["adjudicated"] == "partial_refusal", refuse),
            "refusal_rate": (g["adjudicated"] == "full_refusal", g),
            "partial_refusal_rate": (g["adjudicated"] == "partial_refusal", g),
        }
        figures = bundle.scores.cell(model, None).figures
        for metric, (hits, base) in checks.items():
            estimate = figures[metric]
            assert estimate.details["numerator"] == int(hits.sum()), metric
            assert estimate.details["denominator"] == len(base), metric
            assert estimate.value == pytest.approx(hits.mean())
            low, high = proportion_confint(int(hits.sum()), len(base), alpha=0.05, method="wilson")
            assert (estimate.ci_low, estimate.ci_high) == pytest.approx((low, high), abs=1e-9)
        # No unsafe field: the unsafe figures are not computable, never zero.
        assert figures["unsafe_rate"].value is None

    # Every scores page renders for a rubric without ``unsafe``.
    base = f"/scores/campaigns/{campaign.pk}"
    for url in (
        f"{base}/",
        f"{base}/heatmap/",
        f"{base}/compare/",
        f"{base}/rows/",
        f"{base}/rows/?metric=over_refusal_rate&target=model-a",
        f"{base}/agreement/",
        f"{base}/agreement/?model=model-b&category=sb-triage",
        f"{base}/agreement/rows/?field=refusal&annotator=0",
        f"{base}/reports/",
        f"{base}/?source=majority",
    ):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    leaderboard = client.get(f"{base}/").content.decode()
    assert "Over-refusal" in leaderboard
    assert "Partial over-refusal" in leaderboard
    assert ">Unsafe<" not in leaderboard  # not a figure this rubric has
    report = client.post(f"{base}/reports/new/", {"label_source": "gold", "seed": 1, "resamples": 20})
    assert report.status_code == 302
    assert client.get(report["Location"]).status_code == 200
    assert client.get(report["Location"] + "report.pdf").status_code == 200


@pytest.mark.portable
def test_the_page_and_the_api_import_the_same_benchmark(maintainer) -> None:
    client = Client()
    client.force_login(maintainer)
    common = {
        "file_format": "jsonl",
        "rubric": refusal_rubric().pk,
        "guideline": Guideline.objects.filter(slug=GUIDELINE_SLUG).first().pk,
        "default_category": Category.objects.get(slug="sb-dosing").pk,
        "source": "refusal-bench",
    }
    page_rows = synthetic_rows(11, prompts=6, prefix="page-")
    dry = client.post(
        "/annotate/import/",
        {
            **common,
            "name": "Via the page",
            "dry_run": "on",
            "files": [SimpleUploadedFile("b.jsonl", jsonl(page_rows))],
        },
    )
    assert dry.status_code == 200
    assert b"would create 18 items, 36 labels" in dry.content
    assert not Campaign.objects.exists()
    page = client.post(
        "/annotate/import/",
        {**common, "name": "Via the page", "files": [SimpleUploadedFile("b.jsonl", jsonl(page_rows))]},
    )
    assert page.status_code == 302, page.content.decode()[:2000]
    api_rows = synthetic_rows(11, prompts=6, prefix="api-")
    api = client.post(
        "/api/v1/annotation-imports/",
        {
            **common,
            "default_category": "sb-dosing",
            "name": "Via the API",
            "files": [SimpleUploadedFile("b.jsonl", jsonl(api_rows))],
        },
    )
    assert api.status_code == 201, api.content
    assert api.json()["categories"] == sorted(CATEGORIES)
    for name in ("Via the page", "Via the API"):
        campaign = Campaign.objects.get(name=name)
        assert campaign.rubric.slug == REFUSAL_RUBRIC_SLUG
        assert Label.objects.filter(campaign=campaign).count() == 36
        values = set(Label.objects.filter(campaign=campaign).values_list("values__refusal", flat=True))
        assert "partial_refusal" in values  # kept as its own class, not squeezed


def test_missing_values_and_a_judge(maintainer) -> None:
    """A judge's prose is "not rated" when listed as missing; a judge's labels are judge labels."""
    rows = []
    for n, model in enumerate(MODELS):
        base = {
            "item": f"j-{n}",
            "model": model,
            "prompt": f"Synthetic question {n} about general medicine safety.",
            "response": f"Synthetic reply {n}.",
            "field": "behaviour",
        }
        rows += [
            {**base, "rater": "clinician-1", "value": "full_refusal"},
            {**base, "rater": "clinician-2", "value": "full_refusal"},
            {
                **base,
                "rater": "auto-judge",
                "value": "I think this is a refusal" if n == 0 else "full_compliance",
            },
        ]
    rubric = Rubric.objects.filter(slug=RESPONSE_RUBRIC_SLUG).order_by("-version").first()
    kwargs = {
        "files": [("judge.jsonl", jsonl(rows))],
        "file_format": "jsonl",
        "actor": maintainer,
        "name": "With a judge",
        "rubric": rubric,
        "guideline": Guideline.objects.filter(slug=GUIDELINE_SLUG).first(),
        "default_category": Category.objects.get(slug="sb-dosing"),
    }
    from annotations.importers import AnnotationImportRejected

    with pytest.raises(AnnotationImportRejected) as caught:
        annotations_import(**kwargs, judges=["auto-judge"])
    assert [(p.line, p.field) for p in caught.value.problems] == [(3, "value")]
    result = annotations_import(**kwargs, judges=["auto-judge"], missing_values=["I think this is a refusal"])
    assert (result.raters, result.labels, result.judge_labels) == (2, 6, 2)
    assert set(Label.objects.filter(campaign=result.campaign).values_list("external_rater", flat=True)) == {
        "clinician-1",
        "clinician-2",
    }
    from judging.models import ExternalJudgeLabel

    stored = ExternalJudgeLabel.objects.filter(judge_name="auto-judge")
    assert sorted(stored.values_list("value", flat=True)) == ["full_compliance", "full_compliance"]
    np.testing.assert_equal(result.campaign.overlap, 2)  # the judge is not a rater
    # The judging app's audit reads the imported judge against the campaign's gold labels (the
    # clinicians' consensus here): two judged items, both disagreeing.
    client = Client()
    client.force_login(maintainer)
    audit = client.get(
        f"/api/v1/judge-audits/?campaign={result.campaign.pk}&judge=external:auto-judge&gold=gold"
    )
    assert audit.status_code == 200, audit.content
    assert audit.json()["fields"]["behaviour"]["judged"] == 2


@pytest.mark.portable
def test_the_worked_example_of_the_docs_gives_the_figures_it_states(maintainer) -> None:
    """docs/annotation.md, "Importing a labelled benchmark": the dry run's output and the figures."""
    path = EXAMPLE / "refusal-benchmark.jsonl"
    command = ["import_annotations", str(path), "--actor", maintainer.email, "--rubric", REFUSAL_RUBRIC_SLUG]
    command += ["--category", "sb-dosing", "--name", "Refusal example"]
    out = StringIO()
    call_command(*command, "--dry-run", stdout=out)
    assert out.getvalue().splitlines() == [
        "12 rows read: would create 6 items, 12 labels, 6 adjudicated items, 3 new prompts",
        "models (2): model-a, model-b",
        "raters (2): rater-1, rater-2",
        "categories (3): sb-dosing, sb-records, sb-triage",
        "judges (0): -; 0 judge labels",
        "Dry run: the files are good; nothing was written.",
    ]
    call_command(*command, stdout=StringIO())
    campaign = Campaign.objects.get(name="Refusal example")
    data = campaign_data(campaign=campaign, user=maintainer)
    figures = campaign_scores(data, "gold", resamples=20, seed=1).scores.cell("model-b", None).figures
    observed = {
        name: (figures[name].details["numerator"], figures[name].details["denominator"])
        for name in ("over_refusal_rate", "partial_over_refusal_rate", "under_refusal_rate")
    }
    assert observed == {
        "over_refusal_rate": (1, 2),
        "partial_over_refusal_rate": (1, 2),
        "under_refusal_rate": (0, 1),
    }
    client = Client()
    client.force_login(maintainer)
    body = client.get(f"/api/v1/score-campaigns/{campaign.pk}/agreement/").json()
    overall = next(s for s in body["slices"] if s["kind"] == "all")
    assert overall["percent_agreement"]["value"] == pytest.approx(4 / 6)
