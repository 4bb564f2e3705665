"""Reads of the query bank, scoped by the access policy: the queryset twin of each predicate.

Blind query campaigns: while a clinician is in the pool of an open, blind campaign that labels
queries, the bank hides from them, on that campaign's queries, what the campaign asks them to decide
(the fields its rubric maps to a query attribute: category, expected behaviour, severity) and what
gives it away (the external id, the source file and row, notes, when the query last changed and
its edit history). Search, filters, counts and ordering treat those queries as if the hidden
fields were unknown, so none of them can be read back through the list either.
"""

from collections.abc import Callable, Sequence
from typing import Any

from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)

from accounts.models import User
from accounts.policy import can_read_query_text
from querybank.models import Category, Query, QueryStatus

# Query attributes a query rubric field can ask for (annotations.models.QueryAttribute values).
ASKED_ATTRIBUTES = ("category", "expected_behaviour", "severity")


# Who is blind to which queries is decided above the query bank (by the annotation app, whose open
# blind query campaigns ask clinicians for these fields). The bank sits below that app, so the app
# registers its rule here when it starts (``annotations.apps``) instead of the bank importing it.
BlindItems = Callable[[User], QuerySet[Any]]
_blind_item_sources: list[BlindItems] = []


def blind_items_register(source: BlindItems) -> None:
    """Register ``source(user)``: a queryset of the rows (each with a ``query`` foreign key and the
    rubric path ``campaign__rubric__fields__query_attribute``) that hold queries ``user`` must not
    see the asked fields of."""
    if source not in _blind_item_sources:
        _blind_item_sources.append(source)


def _held(sources: list[QuerySet[Any]], attribute: str | None = None) -> Q:
    """True for a query some source holds (asking for ``attribute``, when given)."""
    held = Q()
    for rows in sources:
        if attribute is not None:
            rows = rows.filter(campaign__rubric__fields__query_attribute=attribute)
        held |= Q(Exists(rows.filter(query=OuterRef("pk"))))
    return held


def _with_masks(queries: QuerySet[Query], user: User) -> QuerySet[Query]:
    """Annotate ``masked`` (a query the user is blind to) and ``mask_<field>`` for each attribute
    hidden from them on it."""
    authenticated = getattr(user, "is_authenticated", False)
    sources = [source(user) for source in _blind_item_sources] if authenticated else []
    if not sources:
        return queries.annotate(masked=Value(False), **{f"mask_{a}": Value(False) for a in ASKED_ATTRIBUTES})
    return queries.annotate(
        masked=ExpressionWrapper(_held(sources), output_field=BooleanField()),
        **{
            f"mask_{attribute}": ExpressionWrapper(_held(sources, attribute), output_field=BooleanField())
            for attribute in ASKED_ATTRIBUTES
        },
    )


def is_masked(query: Query) -> bool:
    """Whether ``query`` (from ``query_list_for_user``) is one the user is blind to."""
    return bool(getattr(query, "masked", False))


def query_list_for_user(
    *, user: User, search: str = "", category_slug: str = "", source: str = ""
) -> QuerySet[Query]:
    """The queries ``user`` may read; empty exactly when ``can_read_query_text`` is false. Each row
    carries ``masked`` and ``mask_<field>`` (see the module docstring): templates and serializers
    hide those fields, and search, filters and ordering here never use them."""
    if not can_read_query_text(user):
        return Query.objects.none()
    queries = _with_masks(Query.objects.select_related("category", "category__taxonomy"), user)
    if search:
        queries = queries.filter(
            Q(text__icontains=search) | (Q(external_id__icontains=search) & Q(masked=False))
        )
    if category_slug:
        queries = queries.filter(category__slug=category_slug, mask_category=False)  # type: ignore[misc]  # annotated by _with_masks
    if source:
        queries = queries.filter(source=source)
    # Masked queries come last, in text order: their place in the list must not follow the hidden
    # category or external id.
    return queries.order_by(  # type: ignore[misc]  # "masked" is annotated by _with_masks
        "masked",
        Case(When(masked=False, then=F("category__taxonomy_id"))),
        Case(When(masked=False, then=F("category__position"))),
        Case(When(masked=False, then=F("external_id"))),
        "text",
        "pk",
    )


def query_get_for_user(*, user: User, query_id: int) -> Query:
    """One query, looked up through the user's scope: raises ``Query.DoesNotExist`` outside it."""
    return query_list_for_user(user=user).get(pk=query_id)


def category_list_for_user(*, user: User) -> QuerySet[Category]:
    """Categories are not sensitive: any active user sees them, with counts only if they may read
    (not counting the queries whose category a blind campaign asks the user to decide)."""
    if not user.is_authenticated or not user.is_active:
        return Category.objects.none()
    categories = Category.objects.select_related("taxonomy")
    if can_read_query_text(user):
        hidden = Q()
        for source in _blind_item_sources:
            asked = source(user).filter(campaign__rubric__fields__query_attribute="category")
            hidden |= Q(queries__in=asked.values("query_id"))
        categories = categories.annotate(query_count=Count("queries", filter=~hidden if hidden else None))
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
