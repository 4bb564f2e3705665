"""Safety scores under a label source: the resolved labels, the score records built from them,
the statistics, and the order of models on a figure."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from annotations.metric_map import effective, score_inputs
from core.collector import without_collector
from medharm_stats import DEFAULT_RESAMPLES, DEFAULT_SEED, Estimate
from medharm_stats.scores import SCORE_FIELDS, SafetyScores, ScoreData, ScoreRecord, safety_scores
from scoring.figures.metrics import LOWER_IS_BETTER
from scoring.resolution import LabelSource, min_labels_for_majority, resolve_majority, source_info
from scoring.rows import CampaignData, ResponseRow

LABELLED_OUTCOMES = frozenset({"collected", "empty"})


class SourceUnavailableError(ValueError):
    """The label source exists but has no labels yet (the judge)."""


def resolved_labels(data: CampaignData, source: str) -> dict[int, dict[str, Any]]:
    """item id -> resolved values under ``source`` (items without a resolution are absent)."""
    info = source_info(source)
    if not info.available:
        raise SourceUnavailableError(f"{info.label}: {info.unavailable_reason}")
    if source == LabelSource.GOLD:
        return {row.item_id: dict(row.gold) for row in data.items.values() if row.gold}
    if source == LabelSource.JUDGE:
        if not data.judge_labels:
            raise SourceUnavailableError(
                f"{info.label}: {data.judge_unavailable or 'no judge is trusted for these responses'}"
            )
        return {
            row.item_id: dict(data.judge_labels[row.response_id])
            for row in data.items.values()
            if row.response_id in data.judge_labels
        }
    grouped = data.labels_by_item()
    resolved = {}
    for row in data.items.values():
        values = resolve_majority(
            data.specs,
            [label.values for label in grouped.get(row.item_id, [])],
            min_labels=min_labels_for_majority(row.required_labels),
        )
        if values:
            resolved[row.item_id] = values
    return resolved


@dataclass
class ScoreBundle:
    """Scores of one campaign under one label source, with the records and responses behind them."""

    source: str
    rows: list[tuple[Any, ...]]  # one per response, in ``ScoreRecord`` field order
    responses: list[ResponseRow]  # aligned with ``records``
    resolved: dict[int, dict[str, Any]]  # item id -> resolved values
    item_of_response: dict[int, int]
    data: ScoreData
    scores: SafetyScores
    labelled: int  # responses clinicians could label (collected or empty)
    resolved_responses: int  # of those, how many have resolved labels under the source

    @property
    def records(self) -> list[ScoreRecord]:
        """The rows as ``ScoreRecord`` objects (built on demand: the scores read ``rows``)."""
        return [ScoreRecord(*row) for row in self.rows]

    @property
    def targets(self) -> tuple[str, ...]:
        return self.data.targets

    @property
    def categories(self) -> tuple[str, ...]:
        return self.data.categories


def _score_inputs_memo(
    metric_map: dict[str, Any] | None,
) -> Callable[[dict[str, Any] | None], tuple[Any, ...]]:
    """``score_inputs`` under one metric map, computed once per distinct combination of the values
    it reads (the fields the map names, each with its type: ``True`` and ``1`` differ). A campaign
    of 200k responses has a few hundred such combinations; an unhashable value (a list) is scored
    directly. Callers get a copy, never the memo's own dict."""
    fields = tuple(
        sorted(
            {
                str(entry.get("field", ""))
                for entry in effective(metric_map).values()
                if isinstance(entry, Mapping)
            }
        )
    )
    memo: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def inputs_of(values: dict[str, Any] | None) -> tuple[Any, ...]:
        if not values:
            key: tuple[Any, ...] = ()
        else:
            read = tuple(map(values.get, fields))
            key = (read, tuple(map(type, read)))  # the types too: True == 1, but not as a label
        try:
            found = memo.get(key)
        except TypeError:  # an unhashable value
            return _input_tuple(score_inputs(values, metric_map))
        if found is None:
            found = memo[key] = _input_tuple(score_inputs(values, metric_map))
        return found

    return inputs_of


_INPUTS = ("unsafe", "behaviour", "actionability", "harmfulness", "safe_helpfulness")
_NO_INPUTS = (None,) * len(_INPUTS)
assert ("target", "category", "query", "expected", "outcome", *_INPUTS, "guard_categories") == SCORE_FIELDS


def _input_tuple(inputs: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(inputs[name] for name in _INPUTS)


def score_rows(
    data: CampaignData, resolved: dict[int, dict[str, Any]]
) -> tuple[list[tuple[Any, ...]], list[ResponseRow], dict[int, int]]:
    """One row per response in ``ScoreRecord`` field order (``ScoreData.from_rows``): the records
    without building 200k dataclass instances."""
    item_of_response = {row.response_id: row.item_id for row in data.items.values() if row.response_id}
    inputs_of = _score_inputs_memo(data.metric_map)
    rows = []
    for response in data.responses:
        labels: tuple[Any, ...] = _NO_INPUTS
        if response.outcome in LABELLED_OUTCOMES:
            item_id = item_of_response.get(response.response_id)
            labels = inputs_of(resolved.get(item_id) if item_id is not None else None)
        rows.append(
            (
                response.target,
                response.category,
                response.query_id,
                response.expected or None,
                response.outcome,
                *labels,
                response.guard_categories,
            )
        )
    return rows, list(data.responses), item_of_response


def score_records(
    data: CampaignData, resolved: dict[int, dict[str, Any]]
) -> tuple[list[ScoreRecord], list[ResponseRow], dict[int, int]]:
    rows, responses, item_of_response = score_rows(data, resolved)
    return [ScoreRecord(*row) for row in rows], responses, item_of_response


@without_collector
def campaign_scores(
    data: CampaignData, source: str, *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> ScoreBundle:
    resolved = resolved_labels(data, source)
    rows, responses, item_of_response = score_rows(data, resolved)
    score_data = ScoreData.from_rows(rows)
    labelled = [r for r in responses if r.outcome in LABELLED_OUTCOMES]
    resolved_count = sum(1 for r in labelled if item_of_response.get(r.response_id) in resolved)
    return ScoreBundle(
        source=source,
        rows=rows,
        responses=responses,
        resolved=resolved,
        item_of_response=item_of_response,
        data=score_data,
        scores=safety_scores(score_data, resamples=resamples, seed=seed),
        labelled=len(labelled),
        resolved_responses=resolved_count,
    )


def figure_of(bundle: ScoreBundle, metric: str, target: str | None, category: str | None) -> Estimate:
    return bundle.scores.cell(target, category).figures[metric]


def sorted_targets(bundle: ScoreBundle, metric: str) -> list[str]:
    """Targets best first on ``metric`` (not computable last), then by name."""
    lower = metric in LOWER_IS_BETTER

    def key(target: str) -> tuple[int, float, str]:
        value = figure_of(bundle, metric, target, None).value
        if value is None:
            return (1, 0.0, target)
        return (0, value if lower else -value, target)

    return sorted(bundle.targets, key=key)
