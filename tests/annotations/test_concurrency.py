"""32 annotators claiming and submitting at once, each thread on its own PostgreSQL connection:
no item ever gets more than k labels, no label is lost, nobody labels an item twice."""

import threading
import time
from collections import Counter

import pytest
from django.db import connection, connections
from django.db.models import Count

from annotations.models import CampaignItem, Label, Lease
from annotations.services.labelling import ClaimOutcome, item_next, label_submit
from tests.annotations.factories import SAFE_VALUES, UNSAFE_VALUES, response_campaign

ANNOTATORS = 32
OVERLAP = 3


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_32_parallel_annotators_never_exceed_k_and_lose_no_label() -> None:
    setup = response_campaign(queries=30, models=3, overlap=OVERLAP, annotators=ANNOTATORS)
    campaign = setup.campaign
    items = CampaignItem.objects.filter(campaign=campaign).count()
    assert items == 90
    submitted: Counter[int] = Counter()
    errors: list[str] = []
    start = threading.Barrier(ANNOTATORS)
    lock = threading.Lock()

    def annotate(index: int) -> None:
        annotator = setup.annotators[index]
        try:
            start.wait()
            waits = 0
            while True:
                claim = item_next(campaign=campaign, annotator=annotator)
                if claim.outcome == ClaimOutcome.DONE:
                    return
                if claim.outcome == ClaimOutcome.WAITING:
                    # Others hold the last items; their labels free nothing for us, but a
                    # skipped or failed claim would. Give up after a generous wait.
                    waits += 1
                    if waits > 400:
                        return
                    time.sleep(0.005)
                    continue
                values = SAFE_VALUES if (claim.item.pk + index) % 2 else UNSAFE_VALUES
                label_submit(item=claim.item, annotator=annotator, values=values)
                with lock:
                    submitted[annotator.pk] += 1
        except Exception as exc:
            with lock:
                errors.append(f"annotator {index}: {type(exc).__name__}: {exc}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=annotate, args=(i,)) for i in range(ANNOTATORS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)
    connection.close()

    assert errors == []
    per_item = dict(Label.objects.filter(campaign=campaign).values_list("item").annotate(n=Count("pk")))
    assert len(per_item) == items
    assert set(per_item.values()) == {OVERLAP}
    assert (
        sorted(CampaignItem.objects.filter(campaign=campaign).values_list("label_count", flat=True))
        == [OVERLAP] * items
    )
    # No label lost: every submit that returned is a row, and the rows are all there are.
    assert sum(submitted.values()) == Label.objects.filter(campaign=campaign).count() == items * OVERLAP
    for annotator in setup.annotators:
        mine = Label.objects.filter(campaign=campaign, annotator=annotator)
        assert mine.count() == submitted[annotator.pk]
        assert mine.values("item").distinct().count() == mine.count()
    assert Lease.objects.filter(campaign=campaign).count() == 0
    # The work spread over the pool: 270 labels, 32 annotators, nobody did more than a fifth of it.
    assert max(submitted.values()) < items * OVERLAP / 5
