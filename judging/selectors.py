"""Reads for judges: permission-aware lists (the twins of ``accounts.policy``'s judge predicates),
judge verdicts per response, the rows an audit is computed from, and live trust."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, F, Max, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.fields.json import KT

from accounts.models import User
from accounts.policy import can_view_judge_audits, can_view_judges
from annotations.models import Adjudication, Campaign, CampaignItem, GoldSource, Rubric, RubricTarget
from core.collector import gc_paused
from judging.audit import FieldAudit, JudgeVerdicts, ResponseInfo, combine_items, field_audit
from judging.models import (
    ExternalJudgeLabel,
    ExternalLabelImport,
    Judge,
    JudgeItem,
    JudgeItemState,
    JudgeOutcome,
    JudgeRun,
    JudgeTemplate,
    JudgeTrust,
    TrustThreshold,
)
from judging.parsers import AUDIT_FIELDS
from querybank.models import Query
from scoring.figures.scores import resolved_labels
from scoring.selectors.snapshot import campaign_data

# --- lists and look-ups ----------------------------------------------------------------------------


def template_list_for_user(*, user: User) -> QuerySet[JudgeTemplate]:
    if not can_view_judges(user):
        return JudgeTemplate.objects.none()
    return JudgeTemplate.objects.all()


def template_latest_list(*, user: User) -> list[JudgeTemplate]:
    templates = template_list_for_user(user=user).order_by("slug", "-version")
    latest: dict[str, JudgeTemplate] = {}
    for template in templates:
        latest.setdefault(template.slug, template)
    return list(latest.values())


def judge_list_for_user(*, user: User) -> QuerySet[Judge]:
    if not can_view_judges(user):
        return Judge.objects.none()
    return Judge.objects.select_related("endpoint", "template")


def judge_run_list_for_user(*, user: User) -> QuerySet[JudgeRun]:
    if not can_view_judges(user):
        return JudgeRun.objects.none()
    return JudgeRun.objects.select_related("judge", "template", "collection_run", "campaign")


def import_list_for_user(*, user: User) -> QuerySet[ExternalLabelImport]:
    if not can_view_judges(user):
        return ExternalLabelImport.objects.none()
    return ExternalLabelImport.objects.select_related("created_by")


def audit_campaign_list_for_user(*, user: User) -> QuerySet[Campaign]:
    """Response campaigns whose clinician labels a judge may be audited against."""
    if not can_view_judge_audits(user):
        return Campaign.objects.none()
    return Campaign.objects.filter(target=RubricTarget.RESPONSE).exclude(status="draft")


@dataclass(frozen=True)
class RunProgress:
    total: int
    finished: int
    parsed: int
    parse_failures: int
    errors: int

    @property
    def percent(self) -> int:
        return round(100 * self.finished / self.total) if self.total else 100


def judge_run_progress(*, run: JudgeRun) -> RunProgress:
    rows = JudgeItem.objects.filter(run=run).values_list("state", "outcome")
    total = finished = parsed = failures = errors = 0
    for state, outcome in rows:
        total += 1
        if state == JudgeItemState.FINISHED:
            finished += 1
            parsed += outcome == "parsed"
            failures += outcome == "parse_failure"
            errors += outcome == "error"
    return RunProgress(total, finished, parsed, failures, errors)


# --- judge sources ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustScope:
    """What a trust covers: the responses of the audit sample's collection runs whose query is in
    one of the audit sample's categories. The one home of that rule: every read of a trusted
    judge's labels (the scores, the reports, the judge-assisted rates) filters by ``q``, in SQL."""

    run_ids: tuple[int, ...]
    categories: tuple[str, ...]

    @classmethod
    def of(cls, trust: JudgeTrust) -> TrustScope:
        return cls(tuple(sorted(int(i) for i in trust.run_ids)), tuple(sorted(trust.categories)))

    def q(self) -> Q:
        """Judged rows (judge items, imported labels) whose response is inside the scope."""
        return Q(response__run_id__in=self.run_ids, response__query__category__slug__in=self.categories)


@dataclass(frozen=True)
class JudgeSource:
    key: str  # "run:<id>" or "external:<name>"
    label: str
    fields: list[str]
    judge: Judge | None = None
    run: JudgeRun | None = None
    imports: tuple[int, ...] | None = None  # an imported judge restricted to these import files
    scope: TrustScope | None = None  # a trusted judge: only the responses its audit covered

    @property
    def external_name(self) -> str:
        return self.key.split(":", 1)[1] if self.key.startswith("external:") else ""


def judge_sources(*, user: User) -> list[JudgeSource]:
    sources = [
        JudgeSource(
            f"run:{run.pk}",
            f"{run.judge.name} · {run.template.slug} v{run.template.version} · run {run.pk}",
            list(run.template.fields),
            run.judge,
            run,
        )
        for run in judge_run_list_for_user(user=user).order_by("-pk")
    ]
    if can_view_judges(user):
        for name, field_names in _external_fields().items():
            sources.append(JudgeSource(f"external:{name}", f"{name} (imported)", field_names))
    return sources


def _external_fields() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, field_name in (
        ExternalJudgeLabel.objects.values_list("judge_name", "field")
        .distinct()
        .order_by("judge_name", "field")
    ):
        out.setdefault(name, []).append(field_name)
    return out


def judge_source_get(*, user: User, key: str) -> JudgeSource:
    for source in judge_sources(user=user):
        if source.key == key:
            return source
    raise JudgeRun.DoesNotExist(f"no judge source {key!r}")


def judge_verdicts(*, source: JudgeSource, fields: list[str] | None = None) -> dict[int, JudgeVerdicts]:
    """response id -> the judge's combined values (majority / mean over samples) of ``fields``
    (default: every field the source answers)."""
    return _verdicts_and_info(source, fields or source.fields, with_info=False)[0]


def judge_verdicts_with_info(
    *, source: JudgeSource, fields: list[str]
) -> tuple[dict[int, JudgeVerdicts], dict[int, ResponseInfo]]:
    """The verdicts, and the model, category and query of each judged response."""
    return _verdicts_and_info(source, fields, with_info=True)


def _value_reader(field_name: str) -> dict[Any, Any]:
    """A field's JSON value as the database gives it out as text (``->>``: ``true``, ``2``,
    ``full_refusal``; SQLite's JSON_EXTRACT gives a boolean as ``1``/``0``) -> the value. A text
    that is no category of the field is no value."""
    out: dict[Any, Any] = {}
    for category in AUDIT_FIELDS[field_name].categories:
        if isinstance(category, bool):
            out["true" if category else "false"] = category
            out[str(int(category))] = category
            out[int(category)] = category
        else:
            out[str(category)] = category
            out[category] = category
    return out


def _judged_rows(source: JudgeSource, fields: list[str] | None = None) -> QuerySet[Any]:
    """The source's judged rows, whatever its scope: the run's finished items, or the imported
    labels (of ``fields``; of every field when None) of the files the source is restricted to."""
    if source.run is not None:
        return JudgeItem.objects.filter(run=source.run, state=JudgeItemState.FINISHED)
    labels = ExternalJudgeLabel.objects.filter(judge_name=source.external_name)
    if fields is not None:
        labels = labels.filter(field__in=fields)
    if source.imports is not None:
        labels = labels.filter(batch_id__in=source.imports)
    return labels


def _in_scope(rows: QuerySet[Any], source: JudgeSource) -> QuerySet[Any]:
    return rows if source.scope is None else rows.filter(source.scope.q())


def judged_outside_scope(*, source: JudgeSource, fields: list[str] | None = None) -> set[int]:
    """The responses the source's judge judged (a verdict or a parse failure) that its scope leaves
    out; none without a scope."""
    if source.scope is None:
        return set()
    return set(
        _judged_rows(source, fields)
        .exclude(source.scope.q())
        .order_by()
        .values_list("response_id", flat=True)
        .distinct()
    )


def _verdicts_and_info(
    source: JudgeSource, fields: list[str], *, with_info: bool
) -> tuple[dict[int, JudgeVerdicts], dict[int, ResponseInfo]]:
    """The judge's verdicts and, with ``with_info``, the model, category and query of every judged
    response, read in one columnar query: joined in the database, each field's value taken out of
    the JSON by the database (``parsed ->> field``), the rows read straight off the cursor. A
    trusted judge's source (``scope``) reads only the responses its audit covered."""
    info: dict[int, ResponseInfo] = {}
    details = ("response__target__label", "response__query__category__slug", "response__query_id")
    readers = [_value_reader(name) for name in fields]
    rows_in_scope = _in_scope(_judged_rows(source, fields), source)
    if source.run is not None:
        items = (
            rows_in_scope.order_by()  # grouped by response below: no sort needed
            .annotate(**{f"value_{i}": KT(f"parsed__{name}") for i, name in enumerate(fields)})
            .values_list(
                "response_id", "outcome", *(f"value_{i}" for i in range(len(fields))),
                *(details if with_info else ()),
            )
        )  # fmt: skip
        sql, params = items.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        width = 2 + len(fields)
        samples: list[tuple[int, str, dict[str, Any] | None, str]] = []
        for row in rows:
            response_id, outcome = row[0], row[1]
            parsed = None
            if outcome == JudgeOutcome.PARSED:
                parsed = {}
                for name, reader, raw in zip(fields, readers, row[2:width], strict=True):
                    value = reader.get(raw) if raw is not None else None
                    if value is not None:
                        parsed[name] = value
            samples.append((response_id, outcome, parsed, ""))
            if with_info and response_id not in info:
                info[response_id] = ResponseInfo(response_id, *row[width:])
        return combine_items(samples, fields), info
    out: dict[int, JudgeVerdicts] = {}
    columns = ("response_id", "field", "value", "raw_output", *(details if with_info else ()))
    for row in rows_in_scope.values_list(*columns).iterator(chunk_size=5000):
        response_id, field_name, value, raw = row[:4]
        verdicts = out.setdefault(response_id, JudgeVerdicts(raw=raw))
        if value is None:
            verdicts.failed.add(field_name)
        else:
            verdicts.values[field_name] = value
        if with_info and response_id not in info:
            info[response_id] = ResponseInfo(response_id, *row[4:])
    return out, info


@dataclass(frozen=True)
class AuditResult:
    campaign: Campaign
    source: JudgeSource
    gold_source: str
    audits: dict[str, FieldAudit]
    statement: str  # which clinician labels the audit used


GOLD_STATEMENTS = {
    "gold": "adjudicated clinician labels (or the clinicians' consensus on complete, undisputed items)",
    "majority": "the clinician majority per field (the maintainer allowed it; not adjudicated)",
}


def _adjudicated_gold(campaign: Campaign) -> tuple[dict[int, dict[str, Any]], dict[int, int]]:
    """response id -> gold values (the current adjudication, else the consensus of a complete,
    undisputed item: ``scoring.resolution``'s "gold" rule), and response id -> item id. Reads only
    the items, not the whole campaign snapshot."""
    current: dict[int, dict[str, Any]] = {}
    for item_id, values in (
        Adjudication.objects.filter(item__campaign=campaign, superseded_by__isnull=True)
        .order_by("item_id", "-created_at", "-pk")
        .values_list("item_id", "values")
    ):
        current.setdefault(item_id, values)
    gold: dict[int, dict[str, Any]] = {}
    item_of_response: dict[int, int] = {}
    for item_id, response_id, values, source in CampaignItem.objects.filter(
        campaign=campaign, response__isnull=False
    ).values_list("pk", "response_id", "gold_values", "gold_source"):
        item_of_response[response_id] = item_id
        if item_id in current:
            gold[response_id] = dict(current[item_id])
        elif source == GoldSource.CONSENSUS and values:
            gold[response_id] = dict(values)
    return gold, item_of_response


def _gold_for(
    campaign: Campaign, user: User, gold_source: str
) -> tuple[dict[int, dict[str, Any]], dict[int, int]]:
    if gold_source == "gold":
        return _adjudicated_gold(campaign)
    data = campaign_data(campaign=campaign, user=user)
    resolved = resolved_labels(data, gold_source)
    item_of_response = {row.response_id: row.item_id for row in data.items.values() if row.response_id}
    gold = {
        row.response_id: resolved[row.item_id]
        for row in data.items.values()
        if row.response_id and row.item_id in resolved
    }
    return gold, item_of_response


def _source_fingerprint(source: JudgeSource) -> tuple[Any, ...]:
    """What changes whenever the judge's verdicts or the judged responses' details change."""
    last = "finished_at" if source.run is not None else "pk"
    judged = _judged_rows(source).aggregate(n=Count("pk"), last=Max(last), ids=Sum("pk"))
    # A query re-categorised (query gold applied) moves its responses to another category (and in or
    # out of a trust's scope): any change to any query is a new key (one aggregate over the query
    # bank, cheaper than the join).
    queries = Query.objects.aggregate(last=Max("updated_at"))
    return (
        source.key, source.imports, source.scope, judged["n"], str(judged["last"]), judged["ids"],
        str(queries["last"]),
    )  # fmt: skip


AUDIT_CACHE_SECONDS = 24 * 3600


def judge_audit_compute(
    *,
    user: User,
    campaign: Campaign,
    source: JudgeSource,
    gold_source: str = "gold",
    resamples: int = 1000,
    fields: list[str] | None = None,
) -> AuditResult:
    """The audit of ``source`` against ``campaign``'s clinicians, for ``fields`` (default: all the
    judge answers).

    Each field's audit is cached under a fingerprint of everything it is computed from: the
    resolved clinician values themselves (read every time; a few thousand rows), the judge's
    finished verdicts (count, last finish, id sum) and the last change to the judged responses'
    queries. Any new verdict, label, adjudication or re-categorised query is a new key, so a
    cached audit is never stale; an unchanged audit (the page reloaded, the API read) is not
    recomputed."""
    if gold_source not in GOLD_STATEMENTS:
        raise ValueError(f"unknown gold source {gold_source!r}")
    names = list(fields or source.fields)
    gold, item_of_response = _gold_for(campaign, user, gold_source)
    digest = hashlib.sha256(
        json.dumps(
            [sorted(gold.items()), sorted(item_of_response.items()), _source_fingerprint(source)],
            sort_keys=True, default=str,
        ).encode()
    ).hexdigest()  # fmt: skip
    keys = {name: f"judging:audit:v1:{digest}:{gold_source}:{name}:{resamples}" for name in names}
    audits: dict[str, FieldAudit] = {
        name: found for name, found in cache.get_many(list(keys.values())).items() if found is not None
    }
    audits = {name: audits[key] for name, key in keys.items() if key in audits}
    missing = [name for name in names if name not in audits]
    if missing:
        with gc_paused():
            verdicts, info = _verdicts_and_info(source, missing, with_info=True)
            computed = {
                name: field_audit(
                    name, gold=gold, item_of_response=item_of_response, judge=verdicts, responses=info,
                    resamples=resamples,
                )
                for name in missing
            }  # fmt: skip
        cache.set_many({keys[name]: audit for name, audit in computed.items()}, AUDIT_CACHE_SECONDS)
        audits.update(computed)
    ordered = {name: audits[name] for name in names}
    return AuditResult(campaign, source, gold_source, ordered, GOLD_STATEMENTS[gold_source])


# --- trust -----------------------------------------------------------------------------------------


def threshold_for(*, field_name: str) -> TrustThreshold | None:
    return TrustThreshold.objects.filter(field=field_name).first()


def trust_list_live() -> QuerySet[JudgeTrust]:
    """Trust grants still in force: not revoked, the audited rubric is its slug's newest, and for a
    platform judge, the judge still uses the audited template version and that version is its
    slug's newest (in SQL). An imported judge has no template: its trust covers the files audited."""
    newest_template = (
        JudgeTemplate.objects.filter(slug=OuterRef("template__slug"))
        .values("slug")
        .annotate(v=Max("version"))
        .values("v")
    )
    newest_rubric = (
        Rubric.objects.filter(slug=OuterRef("rubric__slug"))
        .values("slug")
        .annotate(v=Max("version"))
        .values("v")
    )
    platform = Q(
        judge__isnull=False, judge__template_id=F("template_id"), template__version=F("newest_template")
    )
    imported = Q(judge__isnull=True, external_judge__gt="")
    return (
        JudgeTrust.objects.filter(revoked_at__isnull=True)
        .annotate(newest_template=Subquery(newest_template), newest_rubric=Subquery(newest_rubric))
        .filter(platform | imported, rubric__version=F("newest_rubric"))
        .select_related("judge", "template", "rubric", "judge_run")
    )


def trust_for(*, field_name: str, judge: Judge | None = None, external_judge: str = "") -> JudgeTrust | None:
    """The live trust of a platform ``judge`` or of an imported judge for ``field_name``, if any."""
    live = trust_list_live().filter(field=field_name)
    if judge is not None:
        return live.filter(judge=judge).first()
    if external_judge:
        return live.filter(external_judge=external_judge).first()
    return None


def trust_status(trust: JudgeTrust) -> str:
    """Why a grant is (not) in force, in words."""
    if trust.revoked_at:
        return "revoked"
    if trust_list_live().filter(pk=trust.pk).exists():
        return "trusted"
    return "void: the template or rubric has a newer version than the one audited"


def trust_source(trust: JudgeTrust) -> JudgeSource:
    """The judge labels a trust covers: the audited run, or the audited import files, and of those
    only the responses inside the trust's scope (the audit sample's collection runs and categories)."""
    scope = TrustScope.of(trust)
    if trust.judge_run is not None:
        run = trust.judge_run
        return JudgeSource(f"run:{run.pk}", run.name, [trust.field], trust.judge, run, scope=scope)
    return JudgeSource(
        f"external:{trust.external_judge}", f"{trust.external_judge} (imported)", [trust.field],
        imports=tuple(trust.imports.order_by("pk").values_list("pk", flat=True)), scope=scope,
    )  # fmt: skip


def trust_use_statement(trust: JudgeTrust, left_out: int) -> str:
    """The trust's statement, and how many judged responses its scope left out (when any did)."""
    if not left_out:
        return trust.statement
    responses = "response" if left_out == 1 else "responses"
    return f"{trust.statement}; {left_out} judged {responses} outside the audited scope left out"


@dataclass(frozen=True)
class TrustUse:
    """A live trust as figures use it: its labels count for the responses inside its scope; of the
    responses asked about, ``left_out`` were judged but fall outside it and stay unresolved."""

    trust: JudgeTrust
    left_out: int

    @property
    def field(self) -> str:
        return self.trust.field

    @property
    def statement(self) -> str:
        return trust_use_statement(self.trust, self.left_out)


def trusted_judge_labels(*, response_ids: set[int]) -> tuple[dict[int, dict[str, Any]], list[TrustUse]]:
    """For the scores pages and reports: response id -> values of the fields a live trust covers,
    from the trusted judge's audited run (its combined samples) or audited import files, for the
    responses inside the trust's scope only; and the grants used, each with the number of
    ``response_ids`` it judged outside its scope.

    One judge per field: the latest grant with a label among these responses; when none has one,
    the latest whose scope left some out is still reported, so the page says why the field is
    unresolved."""
    labels: dict[int, dict[str, Any]] = {}
    used: dict[str, TrustUse] = {}
    settled: set[str] = set()  # fields whose labels a grant gave already
    for trust in trust_list_live().order_by("field", "-granted_at"):
        if trust.field in settled:
            continue
        source = trust_source(trust)
        verdicts = judge_verdicts(source=source, fields=[trust.field])
        hit = False
        for response_id in response_ids:
            value = verdicts.get(response_id)
            if value is not None and trust.field in value.values:
                labels.setdefault(response_id, {})[trust.field] = value.values[trust.field]
                hit = True
        left_out = len(judged_outside_scope(source=source, fields=[trust.field]) & response_ids)
        if hit:
            settled.add(trust.field)
            used[trust.field] = TrustUse(trust, left_out)
        elif left_out and trust.field not in used:
            used[trust.field] = TrustUse(trust, left_out)
    return labels, list(used.values())


@dataclass(frozen=True)
class AssistedTable:
    field: str
    statement: str
    campaign: Campaign
    rows: list[Any]  # medharm_stats.judging.AssistedRate


def judge_assisted_rates(*, user: User, resamples: int = 200) -> list[AssistedTable]:
    """For each field a judge is trusted for: per model, the rate by clinicians only (audit sample),
    by the judge only, and by PPI / PPI++ (audit sample + judge labels on the rest). Only the
    responses inside the trust's scope count, labelled or not; the statement says how many judged
    responses it left out."""
    tables = []
    seen: set[str] = set()
    for trust in trust_list_live().order_by("field", "-granted_at"):
        if trust.field in seen:
            continue
        seen.add(trust.field)
        source = trust_source(trust)
        result = judge_audit_compute(
            user=user, campaign=trust.audit_campaign, source=source, gold_source=trust.gold_source,
            resamples=resamples, fields=[trust.field],
        )  # fmt: skip
        statement = trust_use_statement(trust, len(judged_outside_scope(source=source, fields=[trust.field])))
        tables.append(
            AssistedTable(trust.field, statement, trust.audit_campaign, result.audits[trust.field].assisted)
        )
    return tables


# --- template preview ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    errors: dict[str, str]
    messages: tuple[dict[str, str], ...]
    parsed: dict[str, Any] | None
    parse_error: str
    response_id: int | None


def template_preview(
    *,
    user: User,
    prompt: str,
    system_prompt: str,
    parser: str,
    fields: list[str],
    response_id: int | None,
    output: str = "",
) -> Preview:
    """The exact messages a template would send for a chosen response, and what its parser makes of
    a sample judge output. Nothing is written and no model is called."""
    from evaluations.selectors import response_list_for_user
    from judging.parsers import ParseFailure, parse
    from judging.prompts import render_messages, template_errors

    errors = template_errors(prompt=prompt, parser=parser, fields=fields)
    response = None
    if response_id is not None:
        response = (
            response_list_for_user(user=user)
            .filter(pk=response_id)
            .values_list("query__text", "text")
            .first()
            if can_view_judges(user)
            else None
        )
        if response is None:
            errors = {**errors, "response": f"No response {response_id} that you may open."}
    messages: tuple[dict[str, str], ...] = ()
    if response is not None and "prompt" not in errors and "parser" not in errors:
        messages = render_messages(
            prompt=prompt, system_prompt=system_prompt, parser=parser, query=response[0], response=response[1]
        )
    parsed, parse_error = None, ""
    if output and "parser" not in errors:
        try:
            values = parse(parser, output).values
            parsed = {k: v for k, v in values.items() if k in fields}
        except ParseFailure as failure:
            parse_error = str(failure)
    return Preview(errors, messages, parsed, parse_error, response_id)
