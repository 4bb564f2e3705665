"""Reads of the query bank, scoped by the access policy: the queryset twin of each predicate."""

from collections.abc import Sequence
from typing import Any

from django.db.models import Count, Q, QuerySet

from accounts.models import User
from accounts.policy import can_read_query_text
from querybank.models import Category, Query, QueryStatus


def query_list_for_user(
    *, user: User, search: str = "", category_slug: str = "", source: str = ""
) -> QuerySet[Query]:
    """The queries ``user`` may read; empty exactly when ``can_read_query_text`` is false."""
    if not can_read_query_text(user):
        return Query.objects.none()
    queries = Query.objects.select_related("category", "category__taxonomy")
    if search:
        queries = queries.filter(Q(text__icontains=search) | Q(external_id__icontains=search))
    if category_slug:
        queries = queries.filter(category__slug=category_slug)
    if source:
        queries = queries.filter(source=source)
    return queries


def query_get_for_user(*, user: User, query_id: int) -> Query:
    """One query, looked up through the user's scope: raises ``Query.DoesNotExist`` outside it."""
    return query_list_for_user(user=user).get(pk=query_id)


def category_list_for_user(*, user: User) -> QuerySet[Category]:
    """Categories are not sensitive: any active user sees them, with counts only if they may read."""
    if not user.is_authenticated or not user.is_active:
        return Category.objects.none()
    categories = Category.objects.select_related("taxonomy")
    if can_read_query_text(user):
        categories = categories.annotate(query_count=Count("queries"))
    # An annotation with GROUP BY drops Meta.ordering, so the order is stated here.
    return categories.order_by("taxonomy_id", "position", "name")


def query_sources() -> list[str]:
    return list(Query.objects.order_by("source").values_list("source", flat=True).distinct())


def query_selection(
    *,
    queries: QuerySet[Query],
    category: str | None = None,
    source: str | None = None,
    external_ids: Sequence[str] | None = None,
) -> tuple[QuerySet[Query], dict[str, Any]]:
    """The queries a collection run asks: the active ones of ``queries`` (what the maintainer may
    read), narrowed by each choice given; and the record of that choice the run keeps (``selection``).

    The one home of this rule: the run form, the API and the ``collection_run`` command call it, so
    the same choice selects the same queries and is recorded in the same shape.
    """
    chosen = queries.filter(status=QueryStatus.ACTIVE)
    record: dict[str, Any] = {}
    kinds: list[str] = []
    if category:
        chosen, record["category"] = chosen.filter(category__slug=category), category
        kinds.append("category")
    if source:
        chosen, record["source"] = chosen.filter(source=source), source
        kinds.append("source")
    if external_ids:
        ids = list(external_ids)
        chosen, record["external_ids"] = chosen.filter(external_id__in=ids), ids
        kinds.append("list")
    return chosen, {"kind": "+".join(kinds) or "all", **record}
