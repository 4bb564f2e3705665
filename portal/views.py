"""Each role's home page: one page, a section per role the user holds."""

from typing import TYPE_CHECKING, TypedDict, cast

from django.contrib.auth.decorators import login_required
from django.db.models import Count, F
from django.http import HttpResponse
from django.shortcuts import render

from access.models import CredentialStatus, RequestStatus
from access.selectors import (
    grant_list_active,
    profile_for_user,
    profile_list_for_review,
    request_list_for_reviewer,
)
from accounts.http import AuthenticatedHttpRequest
from accounts.roles import Role
from querybank.models import Category, Taxonomy
from querybank.selectors import category_list_for_user, query_list_for_user

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class _QueryCount(TypedDict):
    query_count: int  # the selector's annotation, for users who may read query text


@login_required
def home(request: AuthenticatedHttpRequest) -> HttpResponse:
    """One page, one section per role the user holds; each section shows only what exists today."""
    user = request.user
    roles = user.roles
    can_read_queries = user.has_perm("querybank.read_query_text")
    # The selector's count annotation drops the model's default ordering (GROUP BY), so order here.
    categories = list(category_list_for_user(user=user).order_by("taxonomy_id", "position", "name"))
    context: dict[str, object] = {
        "roles": [role for role in Role if role in roles],
        "is_clinician": Role.CLINICIAN in roles,
        "is_adjudicator": Role.ADJUDICATOR in roles,
        # A superuser holds every permission, so it sees the maintainer's tools without the role.
        "is_maintainer": Role.MAINTAINER in roles or user.is_superuser,
        "is_data_committee": Role.DATA_COMMITTEE in roles,
        "is_researcher": Role.RESEARCHER in roles,
        "category_groups": _group_by_taxonomy(categories),
        "can_read_queries": can_read_queries,
        "can_import": user.has_perm("querybank.run_import"),
        "can_export": user.has_perm("querybank.run_export"),
        "can_invite": user.has_perm("accounts.invite"),
    }
    if context["is_data_committee"]:
        context["committee_pending_requests"] = (
            request_list_for_reviewer(user=user).filter(status=RequestStatus.PENDING).count()
        )
        context["committee_pending_applications"] = (
            profile_list_for_review().filter(status=CredentialStatus.PENDING).count()
        )
    if context["is_researcher"]:
        profile = profile_for_user(user=user)
        context["researcher_credential_status"] = (
            profile.get_status_display() if profile else "no profile yet"
        )
        context["researcher_active_grants"] = grant_list_active(user=user).count()
    if can_read_queries:
        counted = cast("list[WithAnnotations[Category, _QueryCount]]", categories)
        context["query_total"] = sum(category.query_count for category in counted)
    if context["is_maintainer"] and can_read_queries:
        queries = query_list_for_user(user=user).order_by()
        context["queries_by_source"] = list(
            queries.values("source").annotate(count=Count("pk")).order_by("source")
        )
        context["queries_by_taxonomy"] = list(
            queries.values(taxonomy=F("category__taxonomy__name"))
            .annotate(count=Count("pk"))
            .order_by("category__taxonomy_id")
        )
    return render(request, "portal/home.html", context)


def _group_by_taxonomy(categories: list[Category]) -> list[tuple[Taxonomy, list[Category]]]:
    groups: dict[int, tuple[Taxonomy, list[Category]]] = {}
    for category in categories:
        groups.setdefault(category.taxonomy_id, (category.taxonomy, []))[1].append(category)
    return list(groups.values())
