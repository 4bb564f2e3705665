"""The assignment strategy as pure functions: campaign order, per-annotator choice. No Django.

A campaign's items get one fixed order when it is created: items are shuffled within their stratum
(model x category) and the strata are then interleaved, so any stretch of the order holds every
model and category in proportion. "Next item" walks that order and takes the first few eligible
items; among those, each annotator prefers a different one (a hash of a campaign secret, the
annotator and the item), so presentation order differs between annotators while items still fill
up roughly in order (their k-th label, and so adjudication, comes early rather than at the end).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

# How many eligible items the annotator's choice is made among. Larger shuffles more, but holds
# more row locks for the length of a claim and spreads labels over more half-finished items.
CHOICE_WINDOW = 8


@dataclass(frozen=True)
class Candidate:
    item_id: int
    stratum: Hashable


def stratified_order(candidates: Iterable[Candidate], *, seed: str) -> list[int]:
    """Item ids in campaign order: shuffled within strata, strata interleaved evenly.

    Interleaving is by fractional position (item j of a stratum of n sits at (j + 0.5) / n), so a
    stratum with twice the items appears twice as often in every stretch, not all at the end.
    """
    rng = random.Random(seed)  # noqa: S311 - an order, not a secret
    by_stratum: dict[Hashable, list[int]] = {}
    for candidate in candidates:
        by_stratum.setdefault(candidate.stratum, []).append(candidate.item_id)
    strata = sorted(by_stratum, key=repr)
    rng.shuffle(strata)
    placed: list[tuple[Fraction, int, int]] = []
    for rank, stratum in enumerate(strata):
        ids = sorted(by_stratum[stratum])
        rng.shuffle(ids)
        size = len(ids)
        placed.extend((Fraction(2 * j + 1, 2 * size), rank, item_id) for j, item_id in enumerate(ids))
    placed.sort()
    return [item_id for _, _, item_id in placed]


def preference(*, seed: str, annotator_id: int, item_id: int) -> int:
    """This annotator's fixed, unpredictable preference for this item (lower comes first)."""
    digest = hashlib.sha256(f"{seed}:{annotator_id}:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def choose(candidate_ids: Sequence[int], *, seed: str, annotator_id: int) -> int | None:
    """Of the eligible items at the front of the campaign order, the one this annotator gets."""
    if not candidate_ids:
        return None
    return min(
        candidate_ids, key=lambda item_id: preference(seed=seed, annotator_id=annotator_id, item_id=item_id)
    )


def free_slots(*, required: int, labelled: int, leased_by_others: int) -> int:
    """Labels an item can still take: never more than ``required`` counting live leases."""
    return max(0, required - labelled - leased_by_others)


def session_remaining(*, limit: int | None, done: int) -> int | None:
    """Items left in a session with an item limit (``None``: no limit)."""
    if limit is None:
        return None
    return max(0, limit - done)
