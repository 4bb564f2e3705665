"""The pure assignment strategy: campaign order spread across strata, per-annotator choice."""

from collections import Counter

from annotations.assignment import (
    Candidate,
    choose,
    free_slots,
    preference,
    session_remaining,
    stratified_order,
)


def test_the_order_holds_every_item_once_and_spreads_strata_evenly() -> None:
    # 3 models x 2 categories, the first stratum twice as big as the others.
    candidates = []
    next_id = 0
    for stratum in [("m1", "c1"), ("m1", "c2"), ("m2", "c1"), ("m2", "c2"), ("m3", "c1"), ("m3", "c2")]:
        for _ in range(20 if stratum == ("m1", "c1") else 10):
            candidates.append(Candidate(next_id, stratum))
            next_id += 1
    stratum_of = {c.item_id: c.stratum for c in candidates}
    order = stratified_order(candidates, seed="s")
    assert sorted(order) == list(range(70))
    # Every stretch of 14 (a fifth of the campaign) holds each stratum in proportion: 4 of the big
    # one and 2 of each other, give or take one.
    for start in range(0, 70, 14):
        counts = Counter(stratum_of[i] for i in order[start : start + 14])
        assert abs(counts[("m1", "c1")] - 4) <= 1, counts
        for stratum in stratum_of.values():
            if stratum != ("m1", "c1"):
                assert abs(counts[stratum] - 2) <= 1, counts
        # And so each model: m1 has 30 of the 70 items, m2 and m3 20 each.
        models = Counter(stratum_of[i][0] for i in order[start : start + 14])
        assert abs(models["m1"] - 6) <= 1, models
        assert abs(models["m2"] - 4) <= 1, models
        assert abs(models["m3"] - 4) <= 1, models


def test_the_order_is_fixed_by_the_seed() -> None:
    candidates = [Candidate(i, i % 3) for i in range(30)]
    assert stratified_order(candidates, seed="a") == stratified_order(list(reversed(candidates)), seed="a")
    assert stratified_order(candidates, seed="a") != stratified_order(candidates, seed="b")


def test_each_annotator_has_a_fixed_and_different_preference() -> None:
    window = list(range(100, 108))
    picks = {annotator: choose(window, seed="campaign", annotator_id=annotator) for annotator in range(1, 33)}
    assert picks == {a: choose(window, seed="campaign", annotator_id=a) for a in range(1, 33)}
    assert len(set(picks.values())) >= 5  # 32 annotators spread over the 8 items of the window
    assert choose([], seed="campaign", annotator_id=1) is None
    assert preference(seed="x", annotator_id=1, item_id=2) != preference(seed="y", annotator_id=1, item_id=2)


def test_free_slots_count_labels_and_other_annotators_leases() -> None:
    assert free_slots(required=3, labelled=1, leased_by_others=1) == 1
    assert free_slots(required=3, labelled=2, leased_by_others=1) == 0
    assert free_slots(required=2, labelled=2, leased_by_others=3) == 0
    assert session_remaining(limit=None, done=40) is None
    assert session_remaining(limit=20, done=25) == 0
