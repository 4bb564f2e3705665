"""Paired comparison of two models on the queries both answered: which pair a page opens on,
the fine-tunes against their base models, and the comparison per category."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from medharm_stats import DEFAULT_RESAMPLES, DEFAULT_SEED
from medharm_stats.paired import PairedComparison, paired_comparison
from scoring.figures.scores import ScoreBundle
from scoring.rows import CampaignData


def default_pair(data: CampaignData, targets: Iterable[str]) -> tuple[str, str] | None:
    """A medical fine-tune against its base model when both are in the campaign (Endpoint.base_model),
    else the first two targets by name."""
    present = sorted(targets)
    by_endpoint = {info.endpoint_id: label for label, info in data.targets.items() if info.endpoint_id}
    for label in present:
        info = data.targets.get(label)
        if info and info.base_model_id and info.base_model_id in by_endpoint:
            base = by_endpoint[info.base_model_id]
            if base in present and base != label:
                return label, base
    return (present[0], present[1]) if len(present) >= 2 else None


def fine_tune_pairs(data: CampaignData) -> list[tuple[str, str]]:
    by_endpoint = {info.endpoint_id: label for label, info in data.targets.items() if info.endpoint_id}
    return sorted(
        (label, by_endpoint[info.base_model_id])
        for label, info in data.targets.items()
        if info.base_model_id
        and info.base_model_id in by_endpoint
        and by_endpoint[info.base_model_id] != label
    )


def comparisons(
    bundle: ScoreBundle,
    first: str,
    second: str,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> list[PairedComparison]:
    """Overall, then per category in which both targets have responses."""
    out = [paired_comparison(bundle.data, first, second, resamples=resamples, seed=seed)]
    target_code = {name: k for k, name in enumerate(bundle.data.targets)}
    for k, category in enumerate(bundle.data.categories):
        in_category = bundle.data.category == k
        if all(
            np.any(in_category & (bundle.data.target == target_code.get(name, -2)))
            for name in (first, second)
        ):
            out.append(
                paired_comparison(
                    bundle.data, first, second, category=category, resamples=resamples, seed=seed
                )
            )
    return out
