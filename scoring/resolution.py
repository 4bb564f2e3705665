"""Resolving an item's labels into one value per field (gold or clinician majority), and mapping
resolved response labels onto the inputs of ``medharm_stats.scores``. No Django import.

The rules (``docs/scores.md``, "Label sources"):

* **gold**: the latest adjudication of the item that no later one supersedes; without one, the
  annotators' consensus that the annotation app stores on a complete, undisputed item. Items with
  neither are unresolved.
* **majority**: per field, from the clinicians' labels of the item (at least two labels, or one
  when the campaign asks for one label per item). Binary and nominal fields take the most frequent
  value; a tie for the top is unresolved. Ordinal fields take the median point; with an even
  number of labels whose two middle points differ, the median falls between two points and the
  field is unresolved (the same "tie" rule). Text fields are never resolved.
* **judge**: the labels of an LLM judge, only for the fields a judge is trusted for (its audit
  against the clinicians met the maintainer's thresholds, on the current template and rubric
  versions; ``docs/judging.md``). Other fields are unresolved under this source.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from annotations.metric_map import score_inputs
from annotations.rubric_schema import FieldSpec, Kind


class LabelSource(StrEnum):
    GOLD = "gold"
    MAJORITY = "majority"
    JUDGE = "judge"


@dataclass(frozen=True)
class SourceInfo:
    value: str
    label: str
    description: str
    available: bool
    unavailable_reason: str = ""


SOURCES: tuple[SourceInfo, ...] = (
    SourceInfo(
        LabelSource.GOLD,
        "Gold labels",
        "the adjudicated label where an adjudicator decided the item, else the annotators' consensus "
        "on a complete, undisputed item",
        True,
    ),
    SourceInfo(
        LabelSource.MAJORITY,
        "Clinician majority",
        "per field, the most frequent clinician value (ordinal fields: the median point); "
        "ties are unresolved",
        True,
    ),
    SourceInfo(
        LabelSource.JUDGE,
        "LLM judge",
        "labels of an LLM judge, only for the fields it is trusted for (audited against the clinicians)",
        True,
    ),
)
SOURCE_INFO: dict[str, SourceInfo] = {info.value: info for info in SOURCES}


def source_info(value: str) -> SourceInfo:
    """The source named ``value``; ``ValueError`` for an unknown name."""
    try:
        return SOURCE_INFO[value]
    except KeyError:
        raise ValueError(f"unknown label source {value!r} (one of {', '.join(SOURCE_INFO)})") from None


def majority_value(spec: FieldSpec, values: Sequence[object]) -> object | None:
    """The resolved value of one field from the values the labels give (``None`` entries ignored)."""
    present = [v for v in values if v is not None]
    if not present or spec.kind == Kind.TEXT:
        return None
    if spec.kind == Kind.ORDINAL:
        points = sorted(v for v in present if isinstance(v, int) and not isinstance(v, bool))
        if not points:
            return None
        middle = len(points) // 2
        if len(points) % 2 == 1:
            return points[middle]
        low, high = points[middle - 1], points[middle]
        return low if low == high else None
    # repr keeps True and 1 apart, as the annotation app's consensus does.
    counts = Counter(repr(v) for v in present)
    (token, top), *rest = counts.most_common()
    if rest and rest[0][1] == top:
        return None
    return next(v for v in present if repr(v) == token)


def resolve_majority(
    specs: Sequence[FieldSpec], labels: Sequence[Mapping[str, Any]], *, min_labels: int = 2
) -> dict[str, object]:
    """Per categorical field, the majority (or median) value of ``labels``; unresolved fields are left out."""
    if len(labels) < min_labels:
        return {}
    resolved: dict[str, object] = {}
    for spec in specs:
        value = majority_value(spec, [label.get(spec.name) for label in labels])
        if value is not None:
            resolved[spec.name] = value
    return resolved


def min_labels_for_majority(required_labels: int) -> int:
    """A majority needs two labels, unless the campaign asks for one label per item."""
    return 1 if required_labels <= 1 else 2


# --- response rubric -> score inputs -------------------------------------------------------------


def score_labels(
    values: Mapping[str, Any] | None, metric_map: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The resolved values of the score inputs, ``None`` where missing or not understood: read
    through the rubric's metric map (``annotations.metric_map``; empty: our rubric's default).

    A rubric version may lack a field or use a value the map does not name (a point off the
    scale, a new behaviour): that label is missing for the figures that need it, never a guess.
    """
    return score_inputs(values, metric_map)
