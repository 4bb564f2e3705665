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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from operator import attrgetter, itemgetter
from typing import Any

import orjson
from django.core.exceptions import EmptyResultSet
from django.db import connections
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
from core.collector import gc_paused
from evaluations.models import (
    CollectionRun,
    ModelResponse,
    ResponseOutcome,
    ResponseState,
    RunStatus,
    RunTarget,
)
from querybank.models import Category, Query
from scoring.judges import judge_readers
from scoring.rows import CampaignData, ItemRow, LabelRow, ResponseRow, TargetInfo


def json_text(name: str) -> Cast:
    """A JSON column read as its text, so it is decoded by orjson in one call per value instead of
    Django's converter and the standard library (the drill-downs' label reads; the snapshot reads
    its JSON columns as text through ``_rows``)."""
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


STREAM_ROWS = 5_000  # rows per chunk of a streamed read (``_rows``)


@contextmanager
def _rows(rows: QuerySet[Any]) -> Iterator[Iterable[tuple[Any, ...]]]:
    """Every row of a ``values_list`` query (``with _rows(query) as rows``), unsorted, straight from
    the driver's cursor, without a generator of ours between (one per row would cost): Django
    compiles the SQL (the same filters on PostgreSQL and SQLite) but no per-row iterator or
    converter of Django's runs. JSON columns arrive as their text (for orjson) and timestamps as the
    driver gives them: on PostgreSQL aware datetimes from psycopg's C loader (Django's own loader
    is a Python call per value), on SQLite naive ones or text (``_aware``). The query names plain
    fields only (no annotation, no order: its columns are the fields, in order).

    On PostgreSQL the rows are streamed in chunks of ``STREAM_ROWS`` (libpq's chunked rows mode):
    the caller makes its records while the server still sends the rest, so the server's work and
    Python's overlap instead of following each other (measured at 580,000 labels: 1.6-1.9 s
    against 2.1-2.9 s fetched whole, load 4). While Django logs queries (``DEBUG``, a test's
    ``CaptureQueriesContext``) the query goes through Django's cursor and is fetched whole. The
    connection is busy until the rows are all read: nothing may query it inside the ``with``.

    Callers sort what they make: PostgreSQL would sort the whole width of every row before sending
    the first, on disk past ``work_mem`` (the labels' query: 1.18 s sorted, 0.20 s not), where the
    rows arrive nearly sorted and sort in one pass here."""
    query = rows.query
    if query.annotation_select or query.extra_select or query.order_by:
        raise ValueError("_rows reads a values_list of plain fields, unordered")
    try:
        sql, params = query.get_compiler(using=rows.db).as_sql()
    except EmptyResultSet:
        yield ()
        return
    connection = connections[rows.db]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            from psycopg.types.datetime import TimestamptzLoader
            from psycopg.types.string import TextLoader

            # Per cursor: the connection's other cursors keep Django's loaders. psycopg's loader
            # gives the session's time zone, which Django sets to its own (UTC).
            cursor.cursor.adapters.register_loader("jsonb", TextLoader)
            cursor.cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
            if not connection.queries_logged:
                yield cursor.cursor.stream(sql, params, size=STREAM_ROWS)
                return
        cursor.execute(sql, params)
        yield cursor.fetchall()


class _RaterKeys(dict[tuple[int | None, str], str]):
    """(annotator id, external rater) -> ``Label.rater_key``, made once per rater and shared by
    their labels."""

    def __missing__(self, key: tuple[int | None, str]) -> str:
        annotator_id, external = key
        value = self[key] = f"user:{annotator_id}" if annotator_id else f"external:{external}"
        return value


_SCALARS = frozenset({str, int, float, bool, type(None)})


class _Decoded(dict[str, dict[str, Any] | None]):
    """JSON text -> its decoded object when that is a dict of scalars only, else ``None``. Labels
    repeat the same texts (the same ratings, no rationale: the rationale is optional), and a
    shallow copy of such a dict is an independent decoding of its own, equal to a fresh one, at a
    quarter of orjson's cost; anything else is decoded afresh by the caller. At most ``LIMIT``
    texts are kept (free text is rarely repeated)."""

    LIMIT = 20_000

    def __missing__(self, text: str) -> dict[str, Any] | None:
        value = orjson.loads(text)
        flat = value if type(value) is dict and all(type(v) in _SCALARS for v in value.values()) else None
        if len(self) < self.LIMIT:
            self[text] = flat
        return flat


# A row made as ``_new(ItemRow, (...))``: ``tuple.__new__`` in C, where calling the named tuple
# class runs its generated Python ``__new__`` (measured: about 0.3 s more at 580,000 labels).
_new = tuple.__new__


def _aware(when: Any) -> datetime:
    """A timestamp as an aware datetime: on SQLite a naive UTC one (the converter Django
    registers) or its text."""
    if isinstance(when, str):
        return _when(when)
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


ID_BATCH = 5_000  # ids per ``pk__in`` (SQLite allows 32,766 parameters a statement)


def _by_id(rows: QuerySet[Any], ids: set[Any], *fields: str) -> dict[Any, tuple[Any, ...]]:
    """pk -> ``fields`` of the rows of ``ids`` (``None`` left out), a batch of ids at a time."""
    ordered = sorted(ids - {None})
    found: dict[Any, tuple[Any, ...]] = {}
    for start in range(0, len(ordered), ID_BATCH):
        for pk, *values in rows.filter(pk__in=ordered[start : start + ID_BATCH]).values_list("pk", *fields):
            found[pk] = tuple(values)
    return found


def _queries(query_ids: set[int]) -> tuple[dict[int, str], dict[int, str], dict[int, str]]:
    """query id -> external id (else the id), -> category slug, -> expected behaviour (else ""):
    read once per query, not joined to every row, and each text shared by the rows of its query."""
    queries = _by_id(Query.objects.all(), query_ids, "external_id", "category__slug", "expected_behaviour")
    return (
        {pk: ext or str(pk) for pk, (ext, _, _) in queries.items()},
        {pk: slug for pk, (_, slug, _) in queries.items()},
        {pk: exp or "" for pk, (_, _, exp) in queries.items()},
    )


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
    with _rows(responses.order_by().values_list("pk", "run_id", "query_id", "target_id", "outcome")) as rows:
        rows = sorted(rows)
    if not rows:
        return [], runs
    external, category, expected = _queries({row[2] for row in rows})
    target_of = dict(RunTarget.objects.filter(pk__in={row[3] for row in rows}).values_list("pk", "label"))
    return [
        _new(ResponseRow, (pk, run_id, query_id, external[query_id], category[query_id], expected[query_id],
                           target_of[target_id], outcome, blocked.get(pk, ())))
        for pk, run_id, query_id, target_id, outcome in rows
    ], runs  # fmt: skip


def _targets(present: set[str], run_ids: list[int]) -> dict[str, TargetInfo]:
    """The targets (``RunTarget.label``) of the runs that ``present`` names."""
    rows = RunTarget.objects.filter(run_id__in=run_ids).select_related("endpoint").order_by("pk")
    targets: dict[str, TargetInfo] = {}
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


def _items(campaign: Campaign, responses: list[ResponseRow]) -> dict[int, ItemRow]:
    """item id -> row, in the campaign's order, with its gold: the current adjudication, else the
    consensus gold label (when not empty), else none. An item's response's run and target are
    taken from ``responses`` (the snapshot's), read for the others."""
    # Sorted on (campaign order, id): the id decides a tie, and no row compares further.
    with _rows(
        CampaignItem.objects.filter(campaign=campaign)
        .order_by()
        .values_list(
            "sort_key", "pk", "query_id", "response_id", "required_labels", "gold_values", "gold_source"
        )
    ) as rows:
        rows = sorted(rows)
    if not rows:
        return {}
    run_of: dict[int | None, int | None] = {None: None}
    target_of: dict[int | None, str | None] = {None: None}
    for response in responses:
        run_of[response.response_id], target_of[response.response_id] = response.run_id, response.target
    others = _by_id(
        ModelResponse.objects.all(), {row[3] for row in rows} - run_of.keys(), "run_id", "target__label"
    )
    for pk, (run_id, target) in others.items():
        run_of[pk], target_of[pk] = run_id, target
    external, category, expected = _queries({row[2] for row in rows})
    consensus = GoldSource.CONSENSUS.value
    gold = [
        (orjson.loads(text) or None) if source == consensus and text is not None else None
        for *_, text, source in rows
    ]
    items = {
        pk: _new(ItemRow, (pk, query_id, external[query_id], category[query_id], expected[query_id],
                           response_id, run_of[response_id], target_of[response_id], required, gold_,
                           "" if gold_ is None else consensus, None))
        for (_, pk, query_id, response_id, required, _, _), gold_ in zip(rows, gold, strict=True)
    }  # fmt: skip
    for item_id, (adjudication_id, values) in _current_adjudications(campaign).items():
        if item_id in items:
            items[item_id] = items[item_id]._replace(
                gold=values, gold_source=GoldSource.ADJUDICATION.value, adjudication_id=adjudication_id
            )
    return items


def _labels(campaign: Campaign) -> list[LabelRow]:
    """The campaign's labels in the order they were made (time, then id)."""
    raters = _RaterKeys()
    decoded = _Decoded()
    loads = orjson.loads
    with _rows(
        Label.objects.filter(campaign=campaign)
        .order_by()
        .values_list(
            "created_at",
            "pk",
            "item_id",
            "annotator_id",
            "external_rater",
            "values",
            "revision",
            "guideline_id",
            "guideline_hash",
        )
    ) as rows:
        labels = [
            _new(LabelRow, (pk, item_id, raters[annotator_id, external], annotator_id,
                            flat.copy() if (flat := decoded[values]) is not None else (loads(values) or {}),
                            created_at, revision, guideline_id, guideline_hash))
            for created_at, pk, item_id, annotator_id, external, values, revision, guideline_id,
            guideline_hash in rows
        ]  # fmt: skip
    if labels and not (isinstance(labels[0].created_at, datetime) and labels[0].created_at.tzinfo):
        labels = [label._replace(created_at=_aware(label.created_at)) for label in labels]  # SQLite
    labels.sort(key=itemgetter(5, 0))  # created_at, label_id
    return labels


def _rater_names(
    campaign: Campaign, labels: list[LabelRow], *, real_names: bool
) -> tuple[dict[str, str], dict[str, str]]:
    """Pseudonyms in the order raters first labelled in the campaign (stable as labels arrive);
    real names (display name or e-mail; an imported rater's own name) only when allowed.
    ``labels`` are in the order they were made (``_labels``: time, then id), so a rater's first
    label in the list is their first in the campaign."""
    ordered = list(dict.fromkeys(map(attrgetter("rater"), labels)))
    pseudonym = dict(zip(ordered, pseudonyms(len(ordered)), strict=True))
    if not real_names:
        return dict(pseudonym), pseudonym
    users = {
        u.pk: (u.display_name or u.email)
        for u in User.objects.filter(pk__in=set(map(attrgetter("annotator_id"), labels)) - {None})
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
    judge labels are read for ``judge_user`` (default: ``user``). Rows are read a column at a time
    (``_rows``), with the garbage collector paused while they are made."""
    specs = _specs(campaign)
    with gc_paused():
        responses, run_ids = _responses(campaign)
        items = _items(campaign, responses)
        labels = _labels(campaign)
    names, pseudonym = _rater_names(
        campaign, labels, real_names=bool(user is not None and can_see_annotator_names(user))
    )
    response_categories = set(map(attrgetter("category"), responses))
    category_names = dict(
        Category.objects.filter(
            slug__in=set(map(attrgetter("category"), items.values())) | response_categories
        ).values_list("slug", "name")
    )
    judge_labels, judge_statements, judge_unavailable = campaign_judge_labels(
        campaign=campaign,
        user=judge_user or user,
        response_ids=set(map(attrgetter("response_id"), responses)),
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
        targets=_targets(set(map(attrgetter("target"), responses)), run_ids),
        categories=category_names,
        rater_names=names,
        rater_pseudonyms=pseudonym,
        run_ids=run_ids,
        metric_map=dict(campaign.rubric.metric_map or {}),
    )
