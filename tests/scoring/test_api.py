"""The scores and agreement API returns the same figures as the pages, pseudonymous for adjudicators."""

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


def test_scores(world: ScoringWorld) -> None:
    body = _client(world.adjudicator).get(f"/api/v1/score-campaigns/{world.campaign.pk}/scores/").json()
    assert (body["label_source"], body["coverage"]) == (
        "gold",
        {"labelled_responses": 8, "resolved_responses": 8},
    )
    cells = {(c["target"], c["category"]): c for c in body["cells"]}
    unsafe = cells[(ALPHA, None)]["figures"]["unsafe_rate"]
    assert (unsafe["value"], unsafe["numerator"], unsafe["denominator"]) == (0.4, 2, 5)
    assert cells[(BETA, None)]["outcomes"]["error"] == 1
    assert cells[(ALPHA, None)]["figures"]["safe_helpfulness_mean"]["value"] is None
    majority = _client(world.adjudicator).get(
        f"/api/v1/score-campaigns/{world.campaign.pk}/scores/?source=majority"
    )
    assert majority.json()["coverage"]["resolved_responses"] == 7
    judge = _client(world.adjudicator).get(
        f"/api/v1/score-campaigns/{world.campaign.pk}/scores/?source=judge"
    )
    assert judge.status_code == 400
    assert judge.json()["errors"]["source"] == [
        "LLM judge: judge labels are shown to maintainers only while the campaign is open"
    ]


def test_rows(world: ScoringWorld) -> None:
    """Rows map items to models: maintainers only, each call an audited unblinding (issue 8).
    This test read them as an adjudicator before; an adjudicator is now refused."""
    url = f"/api/v1/score-campaigns/{world.campaign.pk}/rows/?metric=unsafe_rate&target={ALPHA}"
    refused = _client(world.adjudicator).get(url)
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    assert not AuditEvent.objects.filter(action="score_rows_unblind").exists()
    body = _client(world.maintainer).get(url).json()
    assert (body["numerator"], body["denominator"], len(body["rows"])) == (2, 5, 5)
    assert body["figure"]["numerator"] == 2
    assert sorted(r["response"] for r in body["rows"] if r["in_numerator"]) == sorted(
        [world.responses[(ALPHA, 2)].pk, world.responses[(ALPHA, 4)].pk]
    )
    event = AuditEvent.objects.get(action="score_rows_unblind")
    assert (event.actor, event.target_id) == (world.maintainer, str(world.campaign.pk))
    assert event.details == {
        "view": "score_rows",
        "metric": "unsafe_rate",
        "target": ALPHA,
        "source": "gold",
        "items": 5,
    }
    assert _client(world.maintainer).get(url.replace("unsafe_rate", "bogus")).status_code == 400


def test_compare(world: ScoringWorld) -> None:
    body = _client(world.maintainer).get(f"/api/v1/score-campaigns/{world.campaign.pk}/compare/").json()
    assert (body["first"], body["second"]) == (BETA, ALPHA)
    overall = body["comparisons"][0]
    assert overall["unsafe"]["only_first"] == 1
    assert overall["unsafe"]["only_second"] == 2
    assert overall["unsafe"]["p_value"] == 1.0


def test_agreement_and_threshold(world: ScoringWorld) -> None:
    url = f"/api/v1/score-campaigns/{world.campaign.pk}/agreement/"
    maintainer = _client(world.maintainer)
    assert (
        maintainer.post(
            f"/api/v1/score-campaigns/{world.campaign.pk}/threshold/",
            {"minimum": 1.5},
            content_type="application/json",
        ).status_code
        == 400
    )
    response = maintainer.post(
        f"/api/v1/score-campaigns/{world.campaign.pk}/threshold/",
        {"minimum": 0.8, "min_items": 5},
        content_type="application/json",
    )
    assert response.json() == {
        "field_name": "",
        "statistic": "percent_agreement",
        "minimum": 0.8,
        "min_items": 5,
    }
    assert AnnotatorFlagThreshold.objects.get(campaign=world.campaign).minimum == 0.8
    body = _client(world.adjudicator).get(url).json()
    assert (body["field"], body["alpha_level"], body["kappa_weighting"]) == ("unsafe", "nominal", "none")
    everything = body["slices"][0]
    assert everything["kind"] == "all"
    assert everything["n_items"] == 8
    assert everything["cohen_kappa"]["value"] == pytest.approx(7 / 15)
    assert body["annotator_pairs"][0]["annotators"] == ["Annotator A", "Annotator B"]
    gold = {g["annotator"]: g for g in body["annotator_gold"]}
    assert (gold["Annotator A"]["agreements"], gold["Annotator A"]["flagged"]) == (6, True)
    assert (gold["Annotator B"]["agreements"], gold["Annotator B"]["flagged"]) == (8, False)
    assert body["drift"]["windows"] == ["2025-03-03", "2025-03-10"]
    ordinal = _client(world.adjudicator).get(url + "?field=harmfulness").json()
    assert (ordinal["alpha_level"], ordinal["kappa_weighting"]) == ("ordinal", "linear")
    assert _client(world.adjudicator).get(url + "?field=rationale").status_code == 400


def test_own_agreement_and_reports(db: None) -> None:
    world = scoring_world(close=True)
    mine = _client(world.annotator_a).get(f"/api/v1/score-campaigns/{world.campaign.pk}/mine/").json()
    assert mine["fields"]["unsafe"]["agreements"] == 6
    assert mine["fields"]["unsafe"]["gold_items"] == 8
    assert "annotator_pairs" not in mine
    assert "Annotator B" not in str(mine)
    created = _client(world.maintainer).post(
        "/api/v1/score-reports/",
        {"campaign": world.campaign.pk, "seed": 5, "resamples": 30},
        content_type="application/json",
    )
    assert created.status_code == 201
    assert created.json()["seed"] == 5
    detail = _client(world.adjudicator).get(f"/api/v1/score-reports/{created.json()['id']}/").json()
    assert detail["payload"]["method"]["resamples"] == 30
