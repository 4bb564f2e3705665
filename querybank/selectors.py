"""Reads of the query bank, scoped by the access policy: the queryset twin of each predicate.

Blind query campaigns: while a clinician is in the pool of an open, blind campaign that labels
queries, the bank hides from them, on that campaign's queries, what the campaign asks them to decide
(the fields its rubric maps to a query attribute: category, expected behaviour, severity) and what
gives it away (the external id, the source file and row, notes, when the query last changed and
its edit history). Search, filters, counts and ordering treat those queries as if the hidden
fields were unknown, so none of them can be read back through the list either.
"""

from django.db.models import Case, Count, Exists, F, OuterRef, Q, QuerySet, Value, When

from accounts.models import User
from accounts.policy import can_read_query_text
from querybank.models import Category, Query

# Query attributes a query rubric field can ask for (annotations.models.QueryAttribute values).
ASKED_ATTRIBUTES = ("category", "expected_behaviour", "severity")


def _blind_items(user: User) -> QuerySet:
    """Items of the open, blind query campaigns in whose pool ``user`` is."""
    from annotations.models import CampaignItem  # the annotation app builds on the query bank

    return CampaignItem.objects.filter(
        campaign__annotators=user,
        campaign__status="open",
        campaign__blind=True,
        campaign__target="query",
    )


def _with_masks(queries: QuerySet[Query], user: User) -> QuerySet[Query]:
    """Annotate ``masked`` (an item of the user's open blind query campaign) and ``mask_<field>``
    for each attribute such a campaign asks for."""
    if not getattr(user, "is_authenticated", False):
        return queries.annotate(masked=Value(False), **{f"mask_{a}": Value(False) for a in ASKED_ATTRIBUTES})
    held = _blind_items(user).filter(query=OuterRef("pk"))
    return queries.annotate(
        masked=Exists(held),
        **{
            f"mask_{attribute}": Exists(held.filter(campaign__rubric__fields__query_attribute=attribute))
            for attribute in ASKED_ATTRIBUTES
        },
    )


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
        queries = queries.filter(category__slug=category_slug, mask_category=False)
    if source:
        queries = queries.filter(source=source)
    # Masked queries come last, in text order: their place in the list must not follow the hidden
    # category or external id.
    return queries.order_by(
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
        asked = _blind_items(user).filter(campaign__rubric__fields__query_attribute="category")
        categories = categories.annotate(
            query_count=Count("queries", filter=~Q(queries__in=asked.values("query_id")))
        )
    # An annotation with GROUP BY drops Meta.ordering, so the order is stated here.
    return categories.order_by("taxonomy_id", "position", "name")


def query_sources() -> list[str]:
    return list(Query.objects.order_by("source").values_list("source", flat=True).distinct())
