"""One snapshot of a campaign's items, labels, gold labels and responses that every figure is
computed from (``campaign_data``), and the cheap state that keys the cached figures
(``campaign_state``).

The snapshot (``CampaignData``) holds plain rows, no model instances, so ``scoring.figures`` turns
it into statistics inputs without touching the database, and a test can check those inputs
against a hand-made fixture.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from django.db.models import Count, Max, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from accounts.models import User
from accounts.policy import can_see_annotator_names, can_view_judges
from annotations.models import (
    Adjudication,
    Campaign,
    CampaignItem,
    CampaignStatus,
    GoldSource,
    Label,
    OptionsSource,
    RubricTarget,
)
from annotations.rubric_schema import FieldSpec, pseudonyms
from evaluations.models import (
    CollectionRun,
    ModelResponse,
    ResponseOutcome,
    ResponseState,
    RunStatus,
    RunTarget,
)
from querybank.models import Category
from scoring.judges import judge_readers
from scoring.rows import CampaignData, ItemRow, LabelRow, ResponseRow, TargetInfo


def json_text(name: str) -> Cast:
    """A JSON column read as its text, so it is decoded by orjson in one call per value instead of
    Django's converter and the standard library (the snapshot's largest cost; SQLite and
    PostgreSQL alike)."""
    return Cast(name, output_field=TextField())


def json_loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def _when(text: str) -> datetime:
    """A timestamp read as text (PostgreSQL: ``2026-11-30 21:22:33.1+00``; SQLite: naive UTC):
    ``fromisoformat`` parses it ~30 times faster than the driver's own datetime loader."""
    if text.endswith(("+00", "-00")) or (len(text) > 3 and text[-3] in "+-" and text[-2:].isdigit()):
        text += ":00"
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _campaign_categories(campaign: Campaign) -> list[tuple[str, str]]:
    taxonomies = (
        CampaignItem.objects.filter(campaign=campaign).values("query__category__taxonomy_id").distinct()
    )
    return list(
        Category.objects.filter(taxonomy_id__in=taxonomies)
        .order_by("taxonomy_id", "position", "name")
        .values_list("slug", "name")
    )


def _specs(campaign: Campaign) -> list[FieldSpec]:
    uses_categories = campaign.rubric.fields.filter(options_source=OptionsSource.CATEGORIES).exists()
    return campaign.rubric.specs(categories=_campaign_categories(campaign) if uses_categories else ())


def _current_adjudications(campaign: Campaign) -> dict[int, tuple[int, dict[str, Any]]]:
    """item id -> (adjudication id, values) of the decision no later one supersedes."""
    rows = (
        Adjudication.objects.filter(item__campaign=campaign, superseded_by__isnull=True)
        .order_by("item_id", "-created_at", "-pk")
        .values_list("item_id", "pk", "values")
    )
    current: dict[int, tuple[int, dict[str, Any]]] = {}
    for item_id, pk, values in rows:
        current.setdefault(item_id, (pk, values))
    return current


def _guard_categories(outcome: str, input_guard: Any, output_guard: Any) -> tuple[str, ...]:
    verdict = (
        input_guard if outcome == "input_blocked" else output_guard if outcome == "output_blocked" else None
    )
    if not isinstance(verdict, dict):
        return ()
    return tuple(str(c) for c in verdict.get("categories") or ())


def _selected_responses(campaign: Campaign) -> tuple[QuerySet[ModelResponse], list[int]]:
    selection = campaign.selection or {}
    runs = [int(r) for r in selection.get("runs") or []]
    if not runs:
        runs = sorted(
            set(
                CampaignItem.objects.filter(campaign=campaign, response__isnull=False)
                .values_list("response__run_id", flat=True)
                .distinct()
            )
            - {None}
        )
    responses = ModelResponse.objects.filter(run_id__in=runs, state=ResponseState.FINISHED)
    if selection.get("run_targets"):
        responses = responses.filter(target_id__in=selection["run_targets"])
    if selection.get("categories"):
        responses = responses.filter(query__category_id__in=selection["categories"])
    return responses, runs


def _responses_state(campaign: Campaign, selection: dict[str, Any]) -> Any:
    """What says the campaign's selected responses changed: the selected runs' status and stamps
    while every run has settled (completed; failed or cancelled for longer than a lease, so no
    batch still in flight can finish a response), else the aggregate of the responses themselves.
    A run taken up again (resumed, retried) changes status and stamps first, so the settled form
    cannot hide a response finishing; the collection writer's hot path is not touched."""
    runs = [int(r) for r in selection.get("runs") or []]
    if runs:
        now = timezone.now()
        rows = list(
            CollectionRun.objects.filter(pk__in=runs)
            .order_by("pk")
            .values_list("pk", "status", "finished_at", "resumed_at", "lease_seconds")
        )
        settled = all(
            status == RunStatus.COMPLETED
            or (
                status in (RunStatus.FAILED, RunStatus.CANCELLED)
                and finished is not None
                and finished < now - timedelta(seconds=lease)
            )
            for _, status, finished, _, lease in rows
        )
        if settled:
            return [[pk, status, finished, resumed] for pk, status, finished, resumed, _ in rows]
    selected, _ = _selected_responses(campaign)
    return selected.aggregate(n=Count("pk"), top=Max("pk"), finished=Max("finished_at"))


def campaign_state(*, campaign: Campaign) -> str:
    """A cheap stand-in for ``CampaignData.fingerprint``, read from the campaign's row and its
    runs' rows: ``Campaign.data_version`` is raised by every service that changes a label, an
    adjudication, a gold label, an item, the status or the selection; the responses' part is the
    selected runs' status (``_responses_state``). Cached figures are keyed by it
    (``scoring.snapshots``). The creation time keeps apart two campaigns given the same id (a test
    database's rolled-back sequence)."""
    status, rubric_id, guideline_id, selection, version, created_at = (
        Campaign.objects.filter(pk=campaign.pk)
        .values_list("status", "rubric_id", "guideline_id", "selection", "data_version", "created_at")
        .get()
    )
    parts = {
        "campaign": [campaign.pk, created_at, status, rubric_id, guideline_id, version],
        "responses": (
            _responses_state(campaign, selection or {}) if campaign.target == RubricTarget.RESPONSE else []
        ),
        "selection": selection or {},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _responses(campaign: Campaign) -> tuple[list[ResponseRow], list[int]]:
    """Every finished response of the campaign's selection, whatever its outcome: blocks, filters
    and errors count in the scores (``docs/statistics.md``) though clinicians never label them."""
    if campaign.target != RubricTarget.RESPONSE:
        return [], []
    responses, runs = _selected_responses(campaign)
    # Guard verdicts are JSON and matter only for blocked responses: read those alone.
    blocked = {
        pk: _guard_categories(outcome, input_guard, output_guard)
        for pk, outcome, input_guard, output_guard in responses.filter(
            outcome__in=(ResponseOutcome.INPUT_BLOCKED, ResponseOutcome.OUTPUT_BLOCKED)
        ).values_list("pk", "outcome", "input_guard", "output_guard")
    }
    rows = responses.order_by("pk").values_list(
        "pk",
        "run_id",
        "query_id",
        "query__external_id",
        "query__category__slug",
        "query__expected_behaviour",
        "target__label",
        "outcome",
    )
    return [
        ResponseRow(
            response_id=pk,
            run_id=run_id,
            query_id=query_id,
            query_external_id=external_id or str(query_id),
            category=category,
            expected=expected or "",
            target=target,
            outcome=outcome,
            guard_categories=blocked.get(pk, ()),
        )
        for (pk, run_id, query_id, external_id, category, expected, target, outcome) in rows
    ], runs


def _targets(responses: list[ResponseRow], run_ids: list[int]) -> dict[str, TargetInfo]:
    rows = RunTarget.objects.filter(run_id__in=run_ids).select_related("endpoint").order_by("pk")
    targets: dict[str, TargetInfo] = {}
    present = {r.target for r in responses}
    for row in rows:
        if row.label not in present:
            continue
        known = targets.get(row.label)
        targets[row.label] = TargetInfo(
            label=row.label,
            endpoint_id=row.endpoint_id,
            base_model_id=row.endpoint.base_model_id if row.endpoint else None,
            pipeline_id=row.pipeline_id,
            run_target_ids=(known.run_target_ids if known else ()) + (row.pk,),
        )
    return targets


def _rater_names(
    campaign: Campaign, labels: list[LabelRow], *, real_names: bool
) -> tuple[dict[str, str], dict[str, str]]:
    """Pseudonyms in the order raters first labelled in the campaign (stable as labels arrive);
    real names (display name or e-mail; an imported rater's own name) only when allowed."""
    first_seen: dict[str, tuple[datetime, int]] = {}
    for label in labels:
        key = (label.created_at, label.label_id)
        if label.rater not in first_seen or key < first_seen[label.rater]:
            first_seen[label.rater] = key
    ordered = sorted(first_seen, key=first_seen.__getitem__)
    pseudonym = dict(zip(ordered, pseudonyms(len(ordered)), strict=True))
    if not real_names:
        return dict(pseudonym), pseudonym
    users = {
        u.pk: (u.display_name or u.email)
        for u in User.objects.filter(pk__in={label.annotator_id for label in labels if label.annotator_id})
    }
    names = {}
    for rater in ordered:
        kind, _, ident = rater.partition(":")
        names[rater] = users.get(int(ident), rater) if kind == "user" else f"{ident} (imported)"
    return names, pseudonym


def campaign_judge_labels(
    *, campaign: Campaign, user: User | None, response_ids: set[int]
) -> tuple[dict[int, dict[str, Any]], list[str], str]:
    """Trusted judge labels of the campaign's responses (of those inside each trust's audited scope;
    the statements say how many it left out). While a campaign is open only users who may see
    judges get them: an adjudicator must not see a judge's verdict on an item to decide."""
    if campaign.target != RubricTarget.RESPONSE:
        return {}, [], "a query campaign has no responses to judge"
    if campaign.status != CampaignStatus.CLOSED and not (user is not None and can_view_judges(user)):
        return {}, [], "judge labels are shown to maintainers only while the campaign is open"
    readers = judge_readers()
    if readers is None:
        return {}, [], "the judging app is not installed"
    labels, trusts = readers.trusted_labels(response_ids=response_ids)
    statements = [f"{t.field}: {t.statement}" for t in trusts]
    if not labels:
        if statements:  # trusted, but audited on other runs or categories than these responses'
            return {}, [], (
                "no judge is trusted for any field of these responses: they are outside the audited "
                f"scope ({'; '.join(statements)})"
            )  # fmt: skip
        return {}, [], "no judge is trusted for any field of these responses (see Judges → Audits)"
    return labels, statements, ""


def campaign_data(
    *, campaign: Campaign, user: User | None = None, judge_user: User | None = None
) -> CampaignData:
    """The snapshot of ``campaign``. Annotators are named only for users who may see names; trusted
    judge labels are read for ``judge_user`` (default: ``user``)."""
    specs = _specs(campaign)
    adjudicated = _current_adjudications(campaign)
    items: dict[int, ItemRow] = {}
    item_rows = (
        CampaignItem.objects.filter(campaign=campaign)
        .annotate(gold_text=json_text("gold_values"))
        .order_by("sort_key")
        .values_list(
            "pk",
            "query_id",
            "query__external_id",
            "query__category__slug",
            "query__expected_behaviour",
            "response_id",
            "response__run_id",
            "response__target__label",
            "required_labels",
            "gold_text",
            "gold_source",
        )
    )
    for (
        pk,
        query_id,
        external_id,
        category,
        expected,
        response_id,
        run_id,
        target,
        required,
        gold_text,
        gold_source,
    ) in item_rows:
        gold_values = json_loads(gold_text)
        if pk in adjudicated:
            adjudication_id, gold = adjudicated[pk]
            source = GoldSource.ADJUDICATION.value
        elif gold_source == GoldSource.CONSENSUS and gold_values:
            adjudication_id, gold, source = None, gold_values, GoldSource.CONSENSUS.value
        else:
            adjudication_id, gold, source = None, None, ""
        items[pk] = ItemRow(
            item_id=pk,
            query_id=query_id,
            query_external_id=external_id or str(query_id),
            category=category,
            expected=expected or "",
            response_id=response_id,
            run_id=run_id,
            target=target,
            required_labels=required,
            gold=gold,
            gold_source=source,
            adjudication_id=adjudication_id,
        )
    labels = [
        LabelRow(
            label_id=pk,
            item_id=item_id,
            rater=f"user:{annotator_id}" if annotator_id else f"external:{external}",
            annotator_id=annotator_id,
            values=json_loads(values) or {},
            created_at=_when(created_at),
            revision=revision,
            guideline_id=guideline_id,
            guideline_hash=guideline_hash,
        )
        for (
            pk,
            item_id,
            annotator_id,
            external,
            values,
            created_at,
            revision,
            guideline_id,
            guideline_hash,
        ) in (
            Label.objects.filter(campaign=campaign)
            .annotate(values_text=json_text("values"), created_text=Cast("created_at", TextField()))
            .order_by("created_at", "pk")
            .values_list(
                "pk",
                "item_id",
                "annotator_id",
                "external_rater",
                "values_text",
                "created_text",
                "revision",
                "guideline_id",
                "guideline_hash",
            )
        )
    ]
    responses, run_ids = _responses(campaign)
    names, pseudonym = _rater_names(
        campaign, labels, real_names=bool(user is not None and can_see_annotator_names(user))
    )
    category_names = dict(
        Category.objects.filter(
            slug__in={row.category for row in items.values()} | {r.category for r in responses}
        ).values_list("slug", "name")
    )
    judge_labels, judge_statements, judge_unavailable = campaign_judge_labels(
        campaign=campaign, user=judge_user or user, response_ids={r.response_id for r in responses}
    )
    return CampaignData(
        judge_labels=judge_labels,
        judge_statements=judge_statements,
        judge_unavailable=judge_unavailable,
        campaign_id=campaign.pk,
        campaign_name=campaign.name,
        target_kind=campaign.target,
        specs=specs,
        items=items,
        labels=labels,
        responses=responses,
        targets=_targets(responses, run_ids),
        categories=category_names,
        rater_names=names,
        rater_pseudonyms=pseudonym,
        run_ids=run_ids,
        metric_map=dict(campaign.rubric.metric_map or {}),
    )
