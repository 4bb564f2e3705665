"""Issue 15: the campaign state that keys cached figures is two indexed row reads, and every write
that changes what the figures show changes it (``Campaign.data_version``, the runs' status)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotations.models import Campaign, CampaignItem, Label
from annotations.services.adjudication import adjudication_record, item_agreement_refresh
from annotations.services.campaigns import campaign_close, campaign_create, campaign_open, campaign_update
from annotations.services.labelling import item_next, label_edit, label_submit
from evaluations.models import CollectionRun, ModelResponse, ResponseOutcome, ResponseState, RunStatus
from judging.services.imports import external_labels_import
from scoring.selectors.snapshot import campaign_state
from tests.scoring.factories import ALPHA, BETA, LABELS, ScoringWorld, scoring_world

pytestmark = [pytest.mark.django_db, pytest.mark.portable]


def _submit(world: ScoringWorld) -> None:
    claim = item_next(campaign=world.campaign, annotator=world.annotator_a)
    assert claim.item is not None
    key = next(k for k, item in world.items.items() if item.pk == claim.item.pk)
    label_submit(item=claim.item, annotator=world.annotator_a, values=dict(LABELS[key][0]))


def _edit(world: ScoringWorld) -> None:
    label = world.label_of((BETA, 1), world.annotator_a)
    label_edit(label=label, annotator=world.annotator_a, values=dict(LABELS[(BETA, 2)][1]))


def _adjudicate(world: ScoringWorld) -> None:
    adjudication_record(
        item=world.items[(ALPHA, 1)],
        adjudicator=world.adjudicator,
        values=dict(LABELS[(ALPHA, 1)][0]),
        rationale="Decided against the guideline.",
    )


def _consensus_recomputed(world: ScoringWorld) -> None:
    """A label's values changed underneath, then the item's gold recomputed: the consensus of
    Beta's q1 (both unsafe) breaks."""
    item = world.items[(BETA, 1)]
    Label.objects.filter(item=item, annotator=world.annotator_a).update(values=dict(LABELS[(BETA, 2)][1]))
    item_agreement_refresh(item=CampaignItem.objects.select_related("campaign").get(pk=item.pk))


def _close(world: ScoringWorld) -> None:
    campaign_close(campaign=world.campaign, actor=world.maintainer)


def _reopen(world: ScoringWorld) -> None:
    campaign_close(campaign=world.campaign, actor=world.maintainer)
    before = campaign_state(campaign=world.campaign)
    campaign_open(campaign=world.campaign, actor=world.maintainer)
    assert campaign_state(campaign=world.campaign) != before


def _rename(world: ScoringWorld) -> None:
    campaign_update(campaign=world.campaign, actor=world.maintainer, name="Renamed")


def _judge_import(world: ScoringWorld) -> None:
    response = world.responses[(ALPHA, 1)]
    external_labels_import(
        actor=world.maintainer,
        name="ext.csv",
        raw=f"judge,response,field,value,raw_output\next,{response.pk},unsafe,true,ok".encode(),
        file_format="csv",
    )


def _run_retried(world: ScoringWorld) -> None:
    """The collection run taken up again (``run_retry_failed``): its responses may change."""
    CollectionRun.objects.filter(pk=world.run.pk).update(
        status=RunStatus.RUNNING, finished_at=None, resumed_at=timezone.now()
    )


WRITES: dict[str, tuple[dict[str, bool], Callable[[ScoringWorld], None]]] = {
    "label submit": ({"label": False, "adjudicate": False}, _submit),
    "label edit": ({}, _edit),
    "adjudication record": ({"adjudicate": False}, _adjudicate),
    "consensus recomputed": ({}, _consensus_recomputed),
    "campaign close": ({}, _close),
    "campaign reopen": ({}, _reopen),
    "campaign update": ({}, _rename),
    "judge labels import": ({}, _judge_import),
    "collection run retried": ({}, _run_retried),
}


@pytest.mark.parametrize("name", list(WRITES))
def test_every_write_that_changes_the_figures_changes_the_state(name: str) -> None:
    options, write = WRITES[name]
    world = scoring_world(**options)
    before = campaign_state(campaign=world.campaign)
    assert campaign_state(campaign=world.campaign) == before  # nothing written: the same state
    write(world)
    assert campaign_state(campaign=world.campaign) != before


def test_an_unchanged_campaign_reads_two_rows_and_another_campaigns_write_leaves_it(
    world: ScoringWorld,
) -> None:
    other = campaign_create(
        actor=world.maintainer,
        name="Another campaign over the same run",
        target="response",
        rubric=world.campaign.rubric,
        guideline=world.campaign.guideline,
        overlap=2,
        annotators=[world.annotator_a, world.annotator_b],
        runs=[world.run.pk],
    )
    campaign_open(campaign=other, actor=world.maintainer)
    before = campaign_state(campaign=world.campaign)
    claim = item_next(campaign=other, annotator=world.annotator_a)
    assert claim.item is not None
    key = next(k for k, r in world.responses.items() if r.pk == claim.item.response_id)
    label_submit(item=claim.item, annotator=world.annotator_a, values=dict(LABELS[key][0]))
    with CaptureQueriesContext(connection) as queries:
        assert campaign_state(campaign=world.campaign) == before
    assert len(queries) == 2  # the campaign's row, its runs' rows: no scan of labels or responses
    assert Campaign.objects.get(pk=other.pk).data_version == 2  # opened, then one label


def test_a_running_run_is_followed_by_its_responses() -> None:
    """While a selected run still runs, the state follows its finished responses (the aggregate
    scan), since the collection writer does not raise any campaign's version."""
    world = scoring_world()
    CollectionRun.objects.filter(pk=world.run.pk).update(status=RunStatus.RUNNING)
    running = campaign_state(campaign=world.campaign)
    assert campaign_state(campaign=world.campaign) == running
    response = world.responses[(ALPHA, 1)]
    ModelResponse.objects.create(
        run=world.run,
        query=response.query,
        target=response.target,
        sample_index=1,
        state=ResponseState.FINISHED,
        outcome=ResponseOutcome.COLLECTED,
        text="Another sample.",
        finished_at=timezone.now(),
    )
    assert campaign_state(campaign=world.campaign) != running


def test_a_cancelled_run_is_settled_once_a_lease_has_passed() -> None:
    world = scoring_world()
    now = timezone.now()
    CollectionRun.objects.filter(pk=world.run.pk).update(
        status=RunStatus.CANCELLED, finished_at=now, lease_seconds=300
    )
    with CaptureQueriesContext(connection) as recent:
        campaign_state(campaign=world.campaign)
    CollectionRun.objects.filter(pk=world.run.pk).update(finished_at=now - timedelta(seconds=301))
    with CaptureQueriesContext(connection) as settled:
        campaign_state(campaign=world.campaign)
    assert (len(recent), len(settled)) == (3, 2)  # in-flight batches may still finish: the scan
