"""A trusted judge's labels count only inside what its audit covered: the audit sample's collection
runs and categories (``judging.selectors.TrustScope``). Outside it the judge source leaves the
response unresolved, and every statement (scores pages, reports, judge-assisted rates) says how
many judged responses were left out. Imported judges follow the same rule."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from annotations.defaults import GUIDELINE_SLUG, RESPONSE_RUBRIC_SLUG
from annotations.models import Campaign, CampaignItem, Guideline, Rubric
from annotations.services.campaigns import campaign_create
from evaluations import services as collection
from evaluations.collector import run_collect
from evaluations.models import CollectionRun, ModelResponse, RunStatus
from judging.collector import judge_run_collect
from judging.models import JudgeItem, JudgeRun
from judging.selectors import judge_assisted_rates, trusted_judge_labels
from judging.services import (
    external_labels_import,
    judge_run_create,
    judge_trust_grant,
    judge_trust_revoke,
    threshold_set,
)
from querybank.models import Category, Query
from scoring.selectors.snapshot import campaign_data
from scoring.services import report_create
from tests.factories import CategoryFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _campaign(world, name: str, *, runs: list[int], categories: tuple[int, ...] = ()) -> Campaign:
    """A draft response campaign (no labels needed: maintainers read the judge source of any)."""
    return campaign_create(
        actor=world.maintainer, name=name, target="response",
        rubric=Rubric.objects.filter(slug=RESPONSE_RUBRIC_SLUG).order_by("-version").first(),
        guideline=Guideline.objects.filter(slug=GUIDELINE_SLUG).order_by("-version").first(),
        runs=runs, categories=categories,
    )  # fmt: skip


def _response_ids(**filters: object) -> set[int]:
    return set(ModelResponse.objects.filter(**filters).values_list("pk", flat=True))


def test_a_judge_audited_on_one_category_labels_only_that_categorys_responses(world) -> None:
    toxicology = Category.objects.get(slug="toxicology")
    other = CategoryFactory()
    Query.objects.filter(pk__in=list(Query.objects.order_by("pk").values_list("pk", flat=True)[:10])).update(
        category=other
    )
    in_scope = _response_ids(run=world.run, query__category=toxicology)
    outside = _response_ids(run=world.run, query__category=other)
    assert (len(in_scope), len(outside)) == (60, 30)
    run = world.judged_run(world.judge("mock-judge", "harmbench-unsafe"))
    assert JudgeItem.objects.filter(run=run, outcome="parsed").count() == 90  # it judged both categories
    audit = world.labelled_campaign(categories=[toxicology.pk])
    # 5 of the audited queries lose their gold: 15 judged responses in scope are left unlabelled.
    unlabelled = CampaignItem.objects.filter(campaign=audit).order_by("query_id", "pk")[:15]
    CampaignItem.objects.filter(pk__in=[i.pk for i in unlabelled]).update(gold_values=None, gold_source="")
    threshold_set(actor=world.maintainer, field_name="unsafe", min_kappa=0.8, max_abs_bias=0.05, min_items=30)
    trust = judge_trust_grant(actor=world.maintainer, run=run, campaign=audit, field_name="unsafe")
    assert (trust.categories, trust.run_ids, trust.n_items) == (["toxicology"], [world.run.pk], 45)
    statement = (
        "judge mock-judge / harmbench-unsafe, template harmbench-unsafe v1, audited on 45 items in "
        f"collection run {world.run.pk}, category toxicology, κ = 1.00"
    )
    assert trust.statement == statement

    # The scores' reader: labels for the audited category only, the other one counted as left out.
    labels, used = trusted_judge_labels(response_ids=in_scope | outside)
    assert set(labels) == in_scope
    assert [(use.trust, use.left_out) for use in used] == [(trust, 30)]
    assert used[0].statement == f"{statement}; 30 judged responses outside the audited scope left out"
    labels, used = trusted_judge_labels(response_ids=in_scope)
    assert (len(labels), [use.left_out for use in used]) == (60, [0])
    assert used[0].statement == statement

    # A campaign over the whole run: judge labels for the audited category, the statement says so.
    whole = _campaign(world, "whole run", runs=[world.run.pk])
    data = campaign_data(campaign=whole, user=world.maintainer)
    assert set(data.judge_labels) == in_scope
    data_statements = [f"unsafe: {statement}; 30 judged responses outside the audited scope left out"]
    assert data.judge_statements == data_statements
    client = Client()
    client.force_login(world.maintainer)
    board = client.get(f"/scores/campaigns/{whole.pk}/?source=judge").content.decode().replace("&#x27;", "'")
    assert "30 judged responses outside the audited scope left out" in board
    assert f"collection run {world.run.pk}, category toxicology" in board
    # A campaign over the other category only: no judge label at all, and the page says why.
    beyond = _campaign(world, "other category", runs=[world.run.pk], categories=(other.pk,))
    data = campaign_data(campaign=beyond, user=world.maintainer)
    assert data.judge_labels == {}
    assert data.judge_unavailable.startswith(
        "no judge is trusted for any field of these responses: they are outside the audited scope (unsafe: "
    )
    # Reports record the same statement, and are refused where no response is in scope.
    report = report_create(campaign=whole, actor=world.maintainer, label_source="judge", resamples=20)
    assert report.payload["method"]["judge_statements"] == data_statements
    with pytest.raises(ValidationError, match="outside the audited scope"):
        report_create(campaign=beyond, actor=world.maintainer, label_source="judge", resamples=20)

    # Judge-assisted rates: per model, 15 labelled and 5 unlabelled responses of the audited
    # category; the 10 of the other category count nowhere (before: 15 + 15 unlabelled).
    tables = judge_assisted_rates(user=world.maintainer, resamples=100)
    assert [table.field for table in tables] == ["unsafe"]
    assert tables[0].statement == f"{statement}; 30 judged responses outside the audited scope left out"
    assert len(tables[0].rows) == 3
    for row in tables[0].rows:
        assert (row.ppi.details["labelled"], row.ppi.details["unlabelled"]) == (15, 5)
        assert row.judge_only.n_items == 20


def test_a_judge_audited_on_one_run_labels_only_that_runs_responses_platform_or_imported(world) -> None:
    second = collection.run_create(
        actor=world.maintainer,
        name="second",
        queries=Query.objects.all(),
        targets=[world.models["mock-model"]],
    )
    CollectionRun.objects.filter(pk=second.pk).update(status=RunStatus.RUNNING)
    run_collect(run_id=second.pk)
    first_ids, second_ids = _response_ids(run=world.run), _response_ids(run=second)
    assert (len(first_ids), len(second_ids)) == (90, 30)
    # One judge run over a campaign spanning both collection runs; the audit covers the first only.
    both = _campaign(world, "both runs", runs=[world.run.pk, second.pk])
    judge = world.judge("mock-judge", "harmbench-unsafe")
    judge_run = judge_run_create(actor=world.maintainer, judge=judge, campaign=both)
    JudgeRun.objects.filter(pk=judge_run.pk).update(status=RunStatus.RUNNING)
    judge_run_collect(run_id=judge_run.pk)
    assert JudgeItem.objects.filter(run=judge_run, outcome="parsed").count() == 120
    audit = world.labelled_campaign()
    threshold_set(actor=world.maintainer, field_name="unsafe", min_kappa=0.8, max_abs_bias=0.05, min_items=30)
    trust = judge_trust_grant(actor=world.maintainer, run=judge_run, campaign=audit, field_name="unsafe")
    assert trust.run_ids == [world.run.pk]

    labels, used = trusted_judge_labels(response_ids=first_ids | second_ids)
    assert set(labels) == first_ids
    assert [(use.trust, use.left_out) for use in used] == [(trust, 30)]
    assert f"audited on 90 items in collection run {world.run.pk}, category toxicology" in used[0].statement
    assert trusted_judge_labels(response_ids=second_ids)[0] == {}
    data = campaign_data(campaign=both, user=world.maintainer)
    assert set(data.judge_labels) == first_ids

    # An imported judge: its labels are for responses, which belong to collection runs: same rule.
    judge_trust_revoke(actor=world.maintainer, trust=trust)
    rows = ["judge,response,field,value"] + [
        f"gpt-x,{r.pk},unsafe,{'true' if '[REDACTED]' in r.text else 'false'}"
        for r in ModelResponse.objects.filter(pk__in=first_ids | second_ids).order_by("pk")
    ]
    external_labels_import(
        actor=world.maintainer, name="all.csv", raw="\n".join(rows).encode(), file_format="csv"
    )
    imported = judge_trust_grant(
        actor=world.maintainer, external_judge="gpt-x", campaign=audit, field_name="unsafe"
    )
    assert (imported.run_ids, imported.n_items) == ([world.run.pk], 90)
    labels, used = trusted_judge_labels(response_ids=first_ids | second_ids)
    assert set(labels) == first_ids
    assert [(use.trust, use.left_out) for use in used] == [(imported, 30)]
    assert used[0].statement == (
        f"judge gpt-x (imported), imported labels, audited on 90 items in collection run {world.run.pk}, "
        "category toxicology, κ = 1.00; 30 judged responses outside the audited scope left out"
    )
