"""Issue 15: the snapshot read a column at a time (``scoring.selectors.snapshot.campaign_data``:
one fetch per table, JSON decoded by orjson, rows made by ``tuple.__new__``) equals the snapshot
read row by row through the ORM, as it was read before, on a campaign with every case the read
handles: adjudications (one superseded), consensus gold (one empty), blocked responses with guard
categories, an imported rater, two labels made at the same instant, a query without external id
or expected behaviour, judge labels, and annotator names shown or hidden. Runs on PostgreSQL (the
driver's C loaders) and on SQLite (text timestamps)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from accounts.policy import can_see_annotator_names
from annotations.models import Adjudication, CampaignItem, GoldSource, Label
from annotations.rubric_schema import pseudonyms
from annotations.services.adjudication import adjudication_record
from evaluations.models import ModelResponse, ResponseOutcome, ResponseState
from querybank.models import Category, Query
from scoring.rows import CampaignData, ItemRow, LabelRow, ResponseRow
from scoring.selectors import snapshot
from tests.scoring.factories import ALPHA, BETA, ScoringWorld

pytestmark = [pytest.mark.django_db, pytest.mark.portable]


def _by_row(data: CampaignData, user: User, campaign: Any) -> dict[str, Any]:
    """The snapshot's rows read as before issue 15's column read: ORM rows, JSON and timestamps
    decoded by Django, one record built per row, names ordered by each rater's earliest label."""
    adjudicated: dict[int, tuple[int, Any]] = {}
    for item_id, pk, values in (
        Adjudication.objects.filter(item__campaign=campaign, superseded_by__isnull=True)
        .order_by("item_id", "-created_at", "-pk")
        .values_list("item_id", "pk", "values")
    ):
        adjudicated.setdefault(item_id, (pk, values))
    items = {}
    for item in (
        CampaignItem.objects.filter(campaign=campaign)
        .select_related("query__category", "response__target")
        .order_by("sort_key")
    ):
        if item.pk in adjudicated:
            adjudication_id, gold, source = *adjudicated[item.pk], "adjudication"
        elif item.gold_source == GoldSource.CONSENSUS and item.gold_values:
            adjudication_id, gold, source = None, item.gold_values, "consensus"
        else:
            adjudication_id, gold, source = None, None, ""
        items[item.pk] = ItemRow(
            item_id=item.pk,
            query_id=item.query_id,
            query_external_id=item.query.external_id or str(item.query_id),
            category=item.query.category.slug,
            expected=item.query.expected_behaviour or "",
            response_id=item.response_id,
            run_id=item.response.run_id if item.response else None,
            target=item.response.target.label if item.response else None,
            required_labels=item.required_labels,
            gold=gold,
            gold_source=source,
            adjudication_id=adjudication_id,
        )
    labels = [
        LabelRow(
            label_id=label.pk,
            item_id=label.item_id,
            rater=f"user:{label.annotator_id}" if label.annotator_id else f"external:{label.external_rater}",
            annotator_id=label.annotator_id,
            values=label.values or {},
            created_at=label.created_at,
            revision=label.revision,
            guideline_id=label.guideline_id,
            guideline_hash=label.guideline_hash,
        )
        for label in Label.objects.filter(campaign=campaign).order_by("created_at", "pk")
    ]
    responses = []
    for response in (
        ModelResponse.objects.filter(run_id__in=campaign.selection["runs"], state=ResponseState.FINISHED)
        .select_related("query__category", "target")
        .order_by("pk")
    ):
        verdict = {
            ResponseOutcome.INPUT_BLOCKED: response.input_guard,
            ResponseOutcome.OUTPUT_BLOCKED: response.output_guard,
        }.get(response.outcome)
        responses.append(
            ResponseRow(
                response_id=response.pk,
                run_id=response.run_id,
                query_id=response.query_id,
                query_external_id=response.query.external_id or str(response.query_id),
                category=response.query.category.slug,
                expected=response.query.expected_behaviour or "",
                target=response.target.label,
                outcome=response.outcome,
                guard_categories=(
                    tuple(str(c) for c in verdict.get("categories") or ())
                    if isinstance(verdict, dict)
                    else ()
                ),
            )
        )
    first: dict[str, tuple[datetime, int]] = {}
    for label in labels:
        first[label.rater] = min(first.get(label.rater, (label.created_at, label.label_id)),
                                 (label.created_at, label.label_id))  # fmt: skip
    ordered = sorted(first, key=first.__getitem__)
    pseudonym = dict(zip(ordered, pseudonyms(len(ordered)), strict=True))
    names = dict(pseudonym)
    if can_see_annotator_names(user):
        for rater in ordered:
            kind, _, ident = rater.partition(":")
            names[rater] = (
                (lambda u: u.display_name or u.email)(User.objects.get(pk=int(ident)))
                if kind == "user"
                else f"{ident} (imported)"
            )
    return {
        "items": items,
        "labels": labels,
        "responses": responses,
        "rater_names": names,
        "rater_pseudonyms": pseudonym,
        "categories": dict(
            Category.objects.filter(
                slug__in={r.category for r in items.values()} | {r.category for r in responses}
            ).values_list("slug", "name")
        ),
        "targets": {label: info.run_target_ids for label, info in data.targets.items()},
    }


def _every_case(world: ScoringWorld) -> None:
    campaign = world.campaign
    run = world.run
    # Blocked responses (never items) with guard verdicts of every shape the read meets.
    alpha = world.responses[(ALPHA, 1)].target
    beta = world.responses[(BETA, 1)].target
    for sample, (target, outcome, guards) in enumerate(
        (
            (alpha, ResponseOutcome.INPUT_BLOCKED, {"input_guard": {"categories": ["S1", 7, True, None]}}),
            (
                beta,
                ResponseOutcome.OUTPUT_BLOCKED,
                {"output_guard": {"categories": ["S11"], "flagged": True}},
            ),
            (beta, ResponseOutcome.OUTPUT_BLOCKED, {"output_guard": ["not", "a", "verdict"]}),
            (alpha, ResponseOutcome.INPUT_BLOCKED, {"input_guard": {"categories": None}}),
            (alpha, ResponseOutcome.OUTPUT_BLOCKED, {"input_guard": {"categories": ["unused"]}}),
        )
    ):
        ModelResponse.objects.create(
            run=run,
            query=world.queries[5],
            target=target,
            sample_index=sample + 1,
            state=ResponseState.FINISHED,
            outcome=outcome,
            text="",
            **guards,
        )
    # A response of the run still being collected is not selected.
    ModelResponse.objects.create(
        run=run, query=world.queries[5], target=alpha, sample_index=9, state=ResponseState.PENDING, outcome=""
    )
    # An item whose response is no longer selected (taken back by the collector): its run and
    # target are read apart.
    ModelResponse.objects.filter(pk=world.responses[(BETA, 2)].pk).update(
        state=ResponseState.LEASED, outcome=ResponseOutcome.NONE
    )
    # A query without external id nor expected behaviour.
    Query.objects.filter(pk=world.queries[3].pk).update(external_id="", expected_behaviour="")
    # An adjudication superseded by a later one on the same item.
    item = world.items[(ALPHA, 1)]
    first = world.label_of((ALPHA, 1), world.annotator_a).values
    adjudication_record(item=item, adjudicator=world.adjudicator, values=first, rationale="first")
    adjudication_record(
        item=item, adjudicator=world.adjudicator, values={**first, "safe_helpfulness": 2}, rationale="second"
    )
    # A consensus gold label that is empty: no gold.
    CampaignItem.objects.filter(pk=world.items[(BETA, 3)].pk).update(gold_values={}, gold_source="consensus")
    # An imported rater's label, made at the same instant as annotator B's on the same item (the
    # label id decides), and earlier than every other: it is "Annotator A" in pseudonymous views.
    label_b = world.label_of((BETA, 4), world.annotator_b)
    imported = Label.objects.create(
        item=label_b.item,
        campaign=campaign,
        external_rater="dr-imported",
        rubric=label_b.rubric,
        values={"unsafe": None, "behaviour": "full_refusal", "rationale": "imported ✓"},
    )
    Label.objects.filter(pk=imported.pk).update(created_at=label_b.created_at)
    earliest = Label.objects.filter(campaign=campaign).order_by("created_at").first()
    assert earliest is not None
    Label.objects.create(
        item=world.items[(ALPHA, 2)],
        campaign=campaign,
        external_rater="dr-early",
        rubric=label_b.rubric,
        values={"unsafe": True},
    )
    Label.objects.filter(external_rater="dr-early").update(created_at=earliest.created_at.replace(year=2024))


class _Readers:
    """A judging app that trusts a judge for the responses it is asked about (odd ids only)."""

    def __init__(self) -> None:
        self.asked: list[set[int]] = []

    def trusted_labels(self, *, response_ids: set[int]) -> tuple[dict[int, dict[str, Any]], list[Any]]:
        self.asked.append(set(response_ids))
        return {pk: {"unsafe": pk % 3 == 0} for pk in response_ids if pk % 2}, []


@pytest.mark.parametrize("viewer", ["maintainer", "adjudicator", "clinician"])
def test_the_column_read_equals_the_row_by_row_read(
    world: ScoringWorld, viewer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _every_case(world)
    readers = _Readers()
    monkeypatch.setattr(snapshot, "judge_readers", lambda: readers)
    user = world.user(viewer)
    assert user is not None
    data = snapshot.campaign_data(campaign=world.campaign, user=user)
    expected = _by_row(data, user, world.campaign)

    assert data.items == expected["items"]
    assert list(data.items) == list(expected["items"])  # the campaign's order
    assert data.labels == expected["labels"]
    assert data.responses == expected["responses"]
    for name in ("rater_names", "rater_pseudonyms", "categories"):
        assert getattr(data, name) == expected[name], name
    assert list(data.rater_names) == list(expected["rater_names"])
    # Each row is its record type, with the value types the figures read.
    assert all(type(row) is ItemRow for row in data.items.values())
    assert all(type(row) is LabelRow for row in data.labels)
    assert all(type(row) is ResponseRow for row in data.responses)
    assert all(label.created_at.utcoffset() is not None for label in data.labels)
    assert {type(label.values) for label in data.labels} == {dict}

    # The cases are there (a test that cannot fail is no test).
    gold_sources = [row.gold_source for row in data.items.values()]
    assert gold_sources.count("adjudication") == 3
    assert "consensus" in gold_sources
    assert sum(1 for r in data.responses if r.guard_categories) == 2
    assert ("S1", "7", "True", "None") in {r.guard_categories for r in data.responses}
    assert any(r.query_external_id == str(r.query_id) and r.expected == "" for r in data.responses)
    unselected = world.responses[(BETA, 2)].pk
    assert unselected not in data.response_ids
    assert data.items[world.items[(BETA, 2)].pk][5:8] == (unselected, world.run.pk, BETA)
    assert data.labels[0].rater == "external:dr-early"
    assert data.rater_pseudonyms["external:dr-early"] == "Annotator A"
    shown = "dr-early (imported)" if viewer == "maintainer" else "Annotator A"
    assert data.rater_names["external:dr-early"] == shown

    # Judge labels: read for the snapshot's responses, and kept as the judging app gave them.
    if viewer == "maintainer":
        assert readers.asked == [{r.response_id for r in data.responses}]
        assert data.judge_labels == {pk: {"unsafe": pk % 3 == 0} for pk in data.response_ids if pk % 2}
        assert data.judge_labels
    assert data.fingerprint() == CampaignData(**{**data.__dict__, **{
        k: v for k, v in expected.items() if k in ("items", "labels", "responses")
    }}).fingerprint()  # fmt: skip


def test_a_campaign_without_rows_reads_empty(world: ScoringWorld) -> None:
    Label.objects.filter(campaign=world.campaign).delete()
    Adjudication.objects.filter(item__campaign=world.campaign).delete()
    CampaignItem.objects.filter(campaign=world.campaign).delete()
    world.campaign.selection = {"runs": []}
    world.campaign.save(update_fields=["selection"])
    data = snapshot.campaign_data(campaign=world.campaign, user=world.maintainer)
    assert (data.items, data.labels, data.responses, data.rater_names) == ({}, [], [], {})


def test_the_read_is_the_same_while_django_logs_queries(world: ScoringWorld) -> None:
    """While queries are logged (``DEBUG``, this context) the rows are fetched whole through
    Django's cursor instead of streamed: the same snapshot, and its queries are seen."""
    _every_case(world)
    streamed = snapshot.campaign_data(campaign=world.campaign, user=world.maintainer)
    with CaptureQueriesContext(connection) as queries:
        logged = snapshot.campaign_data(campaign=world.campaign, user=world.maintainer)
    assert (logged.items, logged.labels, logged.responses) == (
        streamed.items,
        streamed.labels,
        streamed.responses,
    )
    assert list(logged.items) == list(streamed.items)
    assert any('FROM "annotations_label"' in query["sql"] for query in queries.captured_queries)
