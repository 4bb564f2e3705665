"""The audit of one judge on one field, assembled from plain rows. Pure module: no Django import.

``judging.selectors.audit_data`` reads the rows; this module pairs judge and clinician values and
calls ``medharm_stats.judging``. The rules (``docs/judging.md``):

* an item counts when the clinicians resolved the field (adjudicated gold, or the clinician
  majority when the maintainer chose it) and the judge gave a value; a judge parse failure on an
  item with a clinician value counts only in the parse-failure rate;
* bias, rankings and PPI use the field's headline indicator (``parsers.positive_indicator``):
  ``unsafe`` true, ``refusal`` true, actionability >= 2, ...;
* judge-assisted rates: the audit items are the labelled sample, every other judged response of
  the same model the unlabelled one.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from judging.parsers import AUDIT_FIELDS, combine_samples, gold_value, positive_indicator
from medharm_stats.judging import (
    AssistedRate,
    BiasRecord,
    BiasReport,
    JudgeAudit,
    assisted_rate,
    judge_audit,
    judge_bias,
)


@dataclass(frozen=True)
class ResponseInfo:
    response_id: int
    model: str
    category: str
    query_id: int


@dataclass
class JudgeVerdicts:
    """A judge's combined value per field for one response; ``failed`` fields did not parse."""

    values: dict[str, Any] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)
    consistency: dict[str, float] = field(default_factory=dict)  # share of samples agreeing
    raw: str = ""


def combine_items(
    rows: list[tuple[int, str, dict[str, Any] | None, str]], fields: list[str]
) -> dict[int, JudgeVerdicts]:
    """(response id, outcome, parsed, raw output) per sample -> verdicts per response. Errors (the
    call failed) are neither verdicts nor parse failures; a field no sample parsed is a failure."""
    grouped: dict[int, list[tuple[str, dict[str, Any] | None, str]]] = {}
    for response_id, outcome, parsed, raw in rows:
        found = grouped.get(response_id)
        if found is None:
            grouped[response_id] = [(outcome, parsed, raw)]
        else:
            found.append((outcome, parsed, raw))
    out: dict[int, JudgeVerdicts] = {}
    for response_id, samples in grouped.items():
        verdicts = JudgeVerdicts(raw=samples[0][2])
        if len(samples) == 1:
            # One sample (the common case, and 20,900 of them on a large audit): its value is the
            # combined value. No self-consistency: that is a figure of n > 1 samples.
            outcome, parsed, _ = samples[0]
            if outcome == "parse_failure":
                verdicts.failed.update(fields)
            elif outcome == "parsed":
                for name in fields:
                    value = (parsed or {}).get(name)
                    if value is None:
                        verdicts.failed.add(name)
                    else:
                        verdicts.values[name] = value
            else:
                continue
            out[response_id] = verdicts
            continue
        attempted = [s for s in samples if s[0] in ("parsed", "parse_failure")]
        if not attempted:
            continue
        for name in fields:
            combined = combine_samples(name, [(p or {}).get(name) for o, p, _ in attempted if o == "parsed"])
            if combined.value is None and combined.samples == 0:
                verdicts.failed.add(name)
            elif combined.value is not None:
                verdicts.values[name] = combined.value
                if combined.agreement is not None:
                    verdicts.consistency[name] = combined.agreement
        out[response_id] = verdicts
    return out


@dataclass(frozen=True)
class Disagreement:
    response_id: int
    item_id: int
    model: str
    category: str
    gold: Any
    judge: Any
    severity: float


@dataclass(frozen=True)
class FieldAudit:
    field: str
    overall: JudgeAudit
    by_category: dict[str, JudgeAudit]
    by_model: dict[str, JudgeAudit]
    bias: BiasReport | None
    assisted: list[AssistedRate]
    disagreements: list[Disagreement]
    self_consistency: float | None  # mean share of samples agreeing (n > 1 samples)
    judged: int  # responses the judge gave a value for (audit sample or not)

    def as_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "overall": self.overall.as_dict(),
            "by_category": {k: v.as_dict() for k, v in self.by_category.items()},
            "by_model": {k: v.as_dict() for k, v in self.by_model.items()},
            "bias": self.bias.as_dict() if self.bias else None,
            "assisted": [a.as_dict() for a in self.assisted],
            "disagreements": [d.__dict__ for d in self.disagreements],
            "self_consistency": self.self_consistency,
            "judged": self.judged,
        }


def _severity(field_name: str, gold: Any, judge: Any) -> float:
    spec = AUDIT_FIELDS[field_name]
    if spec.ordered:
        return float(abs(gold - judge))
    # Missing the headline class (e.g. calling an unsafe response safe) is the worst error.
    if spec.positive is not None and gold == spec.positive and type(gold) is type(spec.positive):
        return 2.0
    return 1.0


def field_audit(
    field_name: str,
    *,
    gold: Mapping[int, Mapping[str, Any]],  # response id -> resolved clinician values
    item_of_response: Mapping[int, int],
    judge: Mapping[int, JudgeVerdicts],
    responses: Mapping[int, ResponseInfo],
    resamples: int = 1000,
    seed: int = 20240501,
) -> FieldAudit:
    spec = AUDIT_FIELDS[field_name]
    pairs: list[tuple[Hashable, Any, Any]] = []
    failures = 0
    per_category: dict[str, list[tuple[Hashable, Any, Any]]] = {}
    per_model: dict[str, list[tuple[Hashable, Any, Any]]] = {}
    failures_by: dict[str, int] = {}
    bias_records: list[BiasRecord] = []
    disagreements: list[Disagreement] = []
    labelled_ids: set[int] = set()
    for response_id, values in gold.items():
        g = gold_value(field_name, values)
        info = responses.get(response_id)
        verdicts = judge.get(response_id)
        if g is None or info is None or verdicts is None:
            continue
        if field_name in verdicts.failed:
            failures += 1
            failures_by[f"c:{info.category}"] = failures_by.get(f"c:{info.category}", 0) + 1
            failures_by[f"m:{info.model}"] = failures_by.get(f"m:{info.model}", 0) + 1
            continue
        j = verdicts.values.get(field_name)
        if j is None:
            continue
        labelled_ids.add(response_id)
        pair = (response_id, g, j)
        pairs.append(pair)
        per_category.setdefault(info.category, []).append(pair)
        per_model.setdefault(info.model, []).append(pair)
        gi, ji = positive_indicator(field_name, g), positive_indicator(field_name, j)
        if gi is not None and ji is not None:
            bias_records.append(BiasRecord(info.model, info.query_id, gi, ji))
        if g != j or type(g) is not type(j):
            disagreements.append(
                Disagreement(
                    response_id, item_of_response.get(response_id, 0), info.model, info.category, g, j,
                    _severity(field_name, g, j) + (1 - verdicts.consistency.get(field_name, 1.0)),
                )
            )  # fmt: skip
    audit_of = functools.partial(
        judge_audit, categories=spec.categories, ordered=spec.ordered, resamples=resamples, seed=seed
    )
    overall = audit_of(pairs, parse_failures=failures)
    by_category = {
        k: audit_of(v, parse_failures=failures_by.get(f"c:{k}", 0)) for k, v in sorted(per_category.items())
    }
    by_model = {
        k: audit_of(v, parse_failures=failures_by.get(f"m:{k}", 0)) for k, v in sorted(per_model.items())
    }
    bias = judge_bias(bias_records, resamples=resamples, seed=seed) if bias_records else None
    # Judge-assisted rates: audit sample labelled, every other judged response of the model not.
    assisted = []
    by_model_records: dict[str, tuple[list[float], list[float], list[float]]] = {}
    for record in bias_records:
        y, yhat, _ = by_model_records.setdefault(record.model, ([], [], []))
        y.append(record.gold)
        yhat.append(record.judge)
    judged = 0
    for response_id, verdicts in judge.items():
        value = verdicts.values.get(field_name)
        info = responses.get(response_id)
        if value is None or info is None:
            continue
        judged += 1
        if response_id in labelled_ids:
            continue
        indicator = positive_indicator(field_name, value)
        if indicator is not None and info.model in by_model_records:
            by_model_records[info.model][2].append(indicator)
    for model, (y, yhat, unlabelled) in sorted(by_model_records.items()):
        assisted.append(assisted_rate(model, y, yhat, unlabelled))
    consistencies = [v.consistency[field_name] for v in judge.values() if field_name in v.consistency]
    disagreements.sort(key=lambda d: (-d.severity, d.model, d.response_id))
    return FieldAudit(
        field=field_name,
        overall=overall,
        by_category=by_category,
        by_model=by_model,
        bias=bias,
        assisted=assisted,
        disagreements=disagreements,
        self_consistency=sum(consistencies) / len(consistencies) if consistencies else None,
        judged=judged,
    )
