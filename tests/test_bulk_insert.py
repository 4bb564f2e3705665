"""``core.bulk.bulk_insert`` writes what ``bulk_create`` writes (COPY on PostgreSQL, ``bulk_create``
elsewhere): the same column values, the instances' ids, and a sequence that carries on after them."""

from __future__ import annotations

import pytest

from core.bulk import bulk_insert
from querybank.models import Category, ExpectedBehaviour, Query, Severity

pytestmark = [pytest.mark.django_db, pytest.mark.portable]

COMPARED = ("text", "category_id", "expected_behaviour", "severity", "source", "metadata")


def _queries(prefix: str) -> list[Query]:
    category = Category.objects.get(slug="toxicology")
    return [
        Query(
            external_id=f"{prefix}-{n}",
            text=f'Synthetic text {n}, with a tab\there, a quote " and a backslash \\ too.',
            category=category,
            expected_behaviour=(ExpectedBehaviour.REFUSE, ExpectedBehaviour.ANSWER)[n % 2],
            severity=Severity.HIGH,
            source="bulk-test",
            metadata={"n": n, "nested": {"list": [1, None, "x"]}, "unicode": "é\u2028"} if n % 3 else {},
        )
        for n in range(25)
    ]


def test_bulk_insert_writes_what_bulk_create_writes_and_sets_the_ids() -> None:
    inserted = bulk_insert(_queries("copy"), batch_size=10)
    created = Query.objects.bulk_create(_queries("orm"), batch_size=10)
    assert all(q.pk is not None and not q._state.adding for q in inserted)
    stored = {q.pk: q for q in Query.objects.filter(external_id__startswith="copy-")}
    assert sorted(stored) == sorted(q.pk for q in inserted)
    for ours, theirs in zip(inserted, created, strict=True):
        mine = Query.objects.values(*COMPARED, "created_at", "updated_at").get(pk=ours.pk)
        reference = Query.objects.values(*COMPARED).get(pk=theirs.pk)
        assert {k: mine[k] for k in COMPARED} == reference
        assert mine["created_at"] is not None
        assert mine["updated_at"] is not None
        assert stored[ours.pk].external_id == ours.external_id
    # The table's sequence carries on after the ids the insert drew: the next row does not collide.
    after = Query.objects.create(
        external_id="after", text="after", category=inserted[0].category, source="bulk-test"
    )
    assert after.pk > max(q.pk for q in inserted)


def test_bulk_insert_of_nothing_writes_nothing() -> None:
    before = Query.objects.count()
    assert bulk_insert([]) == []
    assert Query.objects.count() == before
