"""Reads for judges: permission-aware lists (the twins of ``accounts.policy``'s judge predicates),
judge verdicts per response, the rows an audit is computed from, and live trust."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import F, Max, OuterRef, QuerySet, Subquery

from accounts.models import User
from accounts.policy import can_view_judge_audits, can_view_judges
from annotations.models import Adjudication, Campaign, CampaignItem, GoldSource, Rubric, RubricTarget
from evaluations.models import ModelResponse
from judging.audit import FieldAudit, JudgeVerdicts, ResponseInfo, combine_items, field_audit
from judging.models import (
    ExternalJudgeLabel,
    ExternalLabelImport,
    Judge,
    JudgeItem,
    JudgeItemState,
    JudgeRun,
    JudgeTemplate,
    JudgeTrust,
    TrustThreshold,
)
from scoring.figures import resolved_labels
from scoring.selectors import campaign_data

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
class JudgeSource:
    key: str  # "run:<id>" or "external:<name>"
    label: str
    fields: list[str]
    judge: Judge | None = None
    run: JudgeRun | None = None


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


def judge_verdicts(*, source: JudgeSource) -> dict[int, JudgeVerdicts]:
    """response id -> the judge's combined values (majority / mean over samples)."""
    if source.run is not None:
        rows = JudgeItem.objects.filter(run=source.run, state=JudgeItemState.FINISHED).values_list(
            "response_id", "outcome", "parsed"
        )
        return combine_items([(pk, outcome, parsed, "") for pk, outcome, parsed in rows], source.fields)
    name = source.key.split(":", 1)[1]
    out: dict[int, JudgeVerdicts] = {}
    for response_id, field_name, value, raw in ExternalJudgeLabel.objects.filter(judge_name=name).values_list(
        "response_id", "field", "value", "raw_output"
    ):
        verdicts = out.setdefault(response_id, JudgeVerdicts(raw=raw))
        if value is None:
            verdicts.failed.add(field_name)
        else:
            verdicts.values[field_name] = value
    return out


def response_info(*, response_ids: set[int]) -> dict[int, ResponseInfo]:
    rows = ModelResponse.objects.filter(pk__in=response_ids).values_list(
        "pk", "target__label", "query__category__slug", "query_id"
    )
    return {pk: ResponseInfo(pk, label, category, query_id) for pk, label, category, query_id in rows}


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
    judge answers)."""
    if gold_source not in GOLD_STATEMENTS:
        raise ValueError(f"unknown gold source {gold_source!r}")
    if gold_source == "gold":
        gold, item_of_response = _adjudicated_gold(campaign)
    else:
        data = campaign_data(campaign=campaign, user=user)
        resolved = resolved_labels(data, gold_source)
        item_of_response = {row.response_id: row.item_id for row in data.items.values() if row.response_id}
        gold = {
            row.response_id: resolved[row.item_id]
            for row in data.items.values()
            if row.response_id and row.item_id in resolved
        }
    verdicts = judge_verdicts(source=source)
    info = response_info(response_ids=set(verdicts) | set(gold))
    audits = {
        name: field_audit(
            name,
            gold=gold,
            item_of_response=item_of_response,
            judge=verdicts,
            responses=info,
            resamples=resamples,
        )
        for name in (fields or source.fields)
    }
    return AuditResult(campaign, source, gold_source, audits, GOLD_STATEMENTS[gold_source])


# --- trust -----------------------------------------------------------------------------------------


def threshold_for(*, field_name: str) -> TrustThreshold | None:
    return TrustThreshold.objects.filter(field=field_name).first()


def trust_list_live() -> QuerySet[JudgeTrust]:
    """Trust grants still in force: not revoked, the judge still uses the audited template version,
    that version is its slug's newest, and the audited rubric is its slug's newest (in SQL)."""
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
    return (
        JudgeTrust.objects.filter(revoked_at__isnull=True, judge__template_id=F("template_id"))
        .annotate(newest_template=Subquery(newest_template), newest_rubric=Subquery(newest_rubric))
        .filter(template__version=F("newest_template"), rubric__version=F("newest_rubric"))
        .select_related("judge", "template", "rubric", "judge_run")
    )


def trust_for(*, judge: Judge, field_name: str) -> JudgeTrust | None:
    return trust_list_live().filter(judge=judge, field=field_name).first()


def trust_status(trust: JudgeTrust) -> str:
    """Why a grant is (not) in force, in words."""
    if trust.revoked_at:
        return "revoked"
    if trust_list_live().filter(pk=trust.pk).exists():
        return "trusted"
    return "void: the template or rubric has a newer version than the one audited"


def trusted_judge_labels(*, response_ids: set[int]) -> tuple[dict[int, dict[str, Any]], list[JudgeTrust]]:
    """For the scores pages: response id -> values of the fields a live trust covers, from the
    trusted judge's audited run (its combined samples), and the grants used."""
    labels: dict[int, dict[str, Any]] = {}
    used: list[JudgeTrust] = []
    for trust in trust_list_live().order_by("field", "-granted_at"):
        if any(t.field == trust.field for t in used):
            continue  # one judge per field: the latest grant
        run = trust.judge_run
        source = JudgeSource(f"run:{run.pk}", run.name, [trust.field], trust.judge, run)
        verdicts = judge_verdicts(source=source)
        hit = False
        for response_id in response_ids:
            value = verdicts.get(response_id)
            if value is not None and trust.field in value.values:
                labels.setdefault(response_id, {})[trust.field] = value.values[trust.field]
                hit = True
        if hit:
            used.append(trust)
    return labels, used


@dataclass(frozen=True)
class AssistedTable:
    field: str
    statement: str
    campaign: Campaign
    rows: list[Any]  # medharm_stats.judging.AssistedRate


def judge_assisted_rates(*, user: User, resamples: int = 200) -> list[AssistedTable]:
    """For each field a judge is trusted for: per model, the rate by clinicians only (audit sample),
    by the judge only, and by PPI / PPI++ (audit sample + judge labels on the rest)."""
    tables = []
    seen: set[str] = set()
    for trust in trust_list_live().order_by("field", "-granted_at"):
        if trust.field in seen:
            continue
        seen.add(trust.field)
        run = trust.judge_run
        source = JudgeSource(f"run:{run.pk}", run.name, [trust.field], trust.judge, run)
        result = judge_audit_compute(
            user=user, campaign=trust.audit_campaign, source=source, gold_source=trust.gold_source,
            resamples=resamples,
        )  # fmt: skip
        tables.append(
            AssistedTable(
                trust.field, trust.statement, trust.audit_campaign, result.audits[trust.field].assisted
            )
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
