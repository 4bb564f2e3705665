"""The access policy: every rule of who may see or do what, as named predicates, in one place.

Each predicate that gates a list has a selector returning the same answer as a queryset
(``querybank.selectors.query_list_for_user`` for ``can_read_query_text``); tests check that the
two agree. Views and API views ask for the permission names registered at the bottom.
"""

import functools
from collections.abc import Callable
from typing import Any, cast

import rules
from allauth.mfa.models import Authenticator
from django.core.exceptions import PermissionDenied
from django.db import connection

from accounts.roles import MFA_REQUIRED_ROLES, Role
from core.actors import SYSTEM, SystemActor


def require(
    predicate: rules.Predicate, actor: Any, obj: Any = None, *, message: str, allow_system: bool = False
) -> None:
    """The check at a service's boundary: refuse ``actor`` unless ``predicate`` holds (for ``obj``).

    A view's check is a courtesy for the page; this one is the guarantee, whoever calls the service
    (page, API, admin action, command, task). ``SYSTEM`` is the platform itself: it passes only
    where the service says so (``allow_system``: writes that record no person, as the demo seeder's
    and sign-up's). ``None`` (a caller that named no actor) never passes.
    """
    if isinstance(actor, SystemActor):
        if allow_system and actor is SYSTEM:
            return
        raise PermissionDenied(message)
    if actor is None or not predicate.test(actor, obj):
        raise PermissionDenied(message)


def _has_role(role: Role) -> rules.Predicate:
    # rules annotates is_group_member as a plain callable; it returns a Predicate (it is decorated).
    return cast(rules.Predicate, rules.is_group_member(role.value))


is_clinician = _has_role(Role.CLINICIAN)
is_adjudicator = _has_role(Role.ADJUDICATOR)
is_maintainer = _has_role(Role.MAINTAINER)
is_data_committee = _has_role(Role.DATA_COMMITTEE)
is_researcher = _has_role(Role.RESEARCHER)
is_superuser = rules.is_superuser
is_active = rules.is_active


# --- Extension points: facts only a higher app knows, registered by that app's ``ready()``.
# ``accounts`` sits below ``releases`` and ``access``; rather than import them, the predicates below
# ask these registries. An unregistered fact is false (an app that is not installed grants nothing).
_MFA_DUTIES: list[Callable[[Any], bool]] = []
_GRANT_FACTS: dict[str, Callable[..., bool]] = {}


def mfa_duty_register(duty: Callable[[Any], bool]) -> None:
    """Register a duty that makes a second factor compulsory beyond the roles of
    ``MFA_REQUIRED_ROLES`` (``releases`` registers "named delegated reviewer of a release")."""
    if duty not in _MFA_DUTIES:
        _MFA_DUTIES.append(duty)


def grant_facts_register(
    *, credentialed: Callable[[Any], bool], active_grant: Callable[[Any, Any], bool]
) -> None:
    """The access app answers "is this researcher credentialed" and "does this user hold an active
    grant on this release" (its selectors, whose queryset twins the permission table checks)."""
    _GRANT_FACTS["credentialed"] = credentialed
    _GRANT_FACTS["active_grant"] = active_grant


def _role_names(user: Any) -> set[str]:
    # The same per-request cache as ``rules.is_group_member``: one query for every role check.
    if not hasattr(user, "_group_names_cache"):
        with connection.cursor() as cursor:
            cursor.execute(_group_names_sql(), [user.pk])
            user._group_names_cache = {name for (name,) in cursor.fetchall()}
    return cast(set[str], user._group_names_cache)


@functools.cache
def _group_names_sql() -> str:
    """The SQL of ``user.groups.values_list("name")``, written once per process: the MFA rule asks
    it on every signed-in request (``accounts.middleware``), where the ORM compiling it cost more
    than running it (0.42 against 0.15 ms; ``tests/accounts`` checks both give the same names)."""
    from django.contrib.auth import get_user_model

    user_model: Any = get_user_model()
    link: Any = user_model.groups.through
    group: Any = link._meta.get_field("group").related_model
    quote = connection.ops.quote_name
    group_table, link_table = quote(group._meta.db_table), quote(link._meta.db_table)
    group_id, group_pk = quote(link._meta.get_field("group").column), quote(group._meta.pk.column)
    user_id = quote(link._meta.get_field(user_model._meta.model_name).column)
    return f"SELECT g.{quote('name')} FROM {group_table} g JOIN {link_table} l ON l.{group_id} = g.{group_pk} WHERE l.{user_id} = %s"  # noqa: E501, S608 - names from the models' metadata; the user id is a parameter


@rules.predicate
def is_mfa_required(user: object) -> bool:
    """The one rule of who must use a second factor: staff, the roles of ``MFA_REQUIRED_ROLES``
    (maintainers, the data committee and adjudicators: they change the benchmark, its gold labels
    or who may see it) and whoever holds a registered duty (a delegated reviewer of a release).
    The same people get the shorter privileged session (``accounts.middleware``)."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_staff or user.is_superuser:  # type: ignore[attr-defined]
        return True
    names = _role_names(user)
    if any(role.value in names for role in MFA_REQUIRED_ROLES):
        return True
    cached = getattr(user, "_mfa_duty_cache", None)
    if cached is None:
        cached = any(duty(user) for duty in _MFA_DUTIES)
        user._mfa_duty_cache = cached  # type: ignore[attr-defined]
    return bool(cached)


@rules.predicate
def has_mfa(user: object) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


# A user that must enrol a second factor and has not may do nothing but enrol (or log out).
needs_mfa_enrolment = is_mfa_required & ~has_mfa

# Query text is the sensitive data. Researchers never read it through their role; a later
# issue adds "holds an active access grant" to this predicate.
can_read_query_text = is_active & (is_superuser | is_clinician | is_adjudicator | is_maintainer)
can_browse_categories = is_active
# A finished query item's gold label (the clinicians' consensus, an adjudication) sets the query's
# category, expected behaviour and severity: whoever labels, adjudicates or curates queries.
can_set_query_gold = is_active & (is_superuser | is_clinician | is_adjudicator | is_maintainer)
can_import_queries = is_active & (is_superuser | is_maintainer)
can_export_queries = is_active & (is_superuser | is_maintainer)
# Taxonomies and categories are the benchmark's structure: maintainers curate them.
can_manage_taxonomies = is_active & (is_superuser | is_maintainer)
can_invite_users = is_active & (is_superuser | is_maintainer)
# Granting and removing roles: whoever may invite with a role (an invitation grants one).
can_assign_roles = can_invite_users

rules.add_perm("querybank.read_query_text", can_read_query_text)
rules.add_perm("querybank.browse_categories", can_browse_categories)
rules.add_perm("querybank.run_import", can_import_queries)
rules.add_perm("querybank.run_export", can_export_queries)
rules.add_perm("querybank.manage_taxonomies", can_manage_taxonomies)
rules.add_perm("accounts.invite", can_invite_users)

# --- Collection
# Registering endpoints, running collections and reading raw responses with model identities:
# maintainers only (annotators see responses only through blinded annotation).
can_manage_collection = is_active & (is_superuser | is_maintainer)

rules.add_perm("evaluations.manage_collection", can_manage_collection)

# --- Annotation
# Clinicians label only in campaigns whose pool holds them, and only ever see blinded items;
# adjudicators see labels under pseudonyms; maintainers run campaigns and alone may see which
# model wrote an item (the annotation service that shows it writes an audit event).
# ``annotations.selectors.campaign_list_for_annotator`` is the queryset twin of the pool rule.


@rules.predicate
def is_in_campaign_pool(user: object, campaign: object) -> bool:
    """Without a campaign: true (the role check alone). With one: the user is in its pool."""
    if campaign is None:
        return True
    if not getattr(user, "is_authenticated", False):
        return False
    return campaign.annotators.filter(pk=user.pk).exists()  # type: ignore[attr-defined]


can_annotate = is_active & is_clinician & is_in_campaign_pool
can_adjudicate = is_active & (is_superuser | is_adjudicator)
can_manage_campaigns = is_active & (is_superuser | is_maintainer)
can_unblind = is_active & (is_superuser | is_maintainer)
can_import_annotations = is_active & (is_superuser | is_maintainer)
can_read_rubrics = is_active & (is_superuser | is_clinician | is_adjudicator | is_maintainer)


@rules.predicate
def is_closed(user: object, campaign: object) -> bool:
    return campaign is not None and getattr(campaign, "status", None) == "closed"


# Campaign-wide progress (complete, disputed, adjudicated) depends on every annotator's values: while
# a campaign is open, its annotators see only their own progress. Maintainers see it; adjudicators
# too, unless they are in the campaign's pool (they would learn how others labelled their items).
can_view_campaign_progress = is_active & (
    is_superuser | is_maintainer | (is_adjudicator & ~is_in_campaign_pool) | is_closed
)

rules.add_perm("annotations.annotate", can_annotate)
rules.add_perm("annotations.view_campaign_progress", can_view_campaign_progress)
rules.add_perm("annotations.adjudicate", can_adjudicate)
rules.add_perm("annotations.manage_campaigns", can_manage_campaigns)
rules.add_perm("annotations.unblind", can_unblind)
rules.add_perm("annotations.import_annotations", can_import_annotations)
rules.add_perm("annotations.read_rubrics", can_read_rubrics)

# --- Scores and agreement
# Dashboards, drill-downs and reports: maintainers and adjudicators, who see labels already
# (``scoring.selectors.campaigns.campaign_list_for_scores`` is the queryset twin). Annotators are named for
# maintainers only; everyone else sees pseudonyms. A clinician sees only their own agreement with
# the gold labels, and only of a closed campaign in whose pool they are: while a campaign is open,
# even one's own figures could reveal the gold label of an item (``campaign_list_for_own_agreement``).


@rules.predicate
def is_closed_campaign(user: object, campaign: object) -> bool:
    """Without a campaign: true (the role check alone). With one: the campaign is closed."""
    return campaign is None or bool(getattr(campaign, "is_closed", False))


@rules.predicate
def is_draft_campaign(user: object, campaign: object) -> bool:
    return bool(getattr(campaign, "is_draft", False))


# Drafts are being set up: only their managers (and their own pool) see them. The queryset twin is
# ``annotations.selectors.campaign_list_for_user``; tests check the two agree.
_in_own_pool = is_clinician & is_in_campaign_pool
can_view_campaign = can_manage_campaigns | (
    is_active & ((can_adjudicate & (~is_draft_campaign | _in_own_pool)) | (_in_own_pool & ~is_draft_campaign))
)

can_view_scores = is_active & (is_superuser | is_maintainer | is_adjudicator)
can_manage_scores = is_active & (is_superuser | is_maintainer)
can_see_annotator_names = is_active & (is_superuser | is_maintainer)
can_view_own_agreement = is_active & is_clinician & is_in_campaign_pool & is_closed_campaign

# Drill-downs list items with the model that wrote each one: that is unblinding, and adjudication is
# blind too, so only the roles that may unblind see them, and every look is an audit event
# (``scoring.services.score_rows_unblind``). Adjudicators see figures, not item-to-model maps.
can_view_identity_rows = can_unblind

rules.add_perm("scoring.view_scores", can_view_scores)
rules.add_perm("scoring.view_identity_rows", can_view_identity_rows)
rules.add_perm("scoring.manage_scores", can_manage_scores)
rules.add_perm("scoring.see_annotator_names", can_see_annotator_names)
rules.add_perm("scoring.view_own_agreement", can_view_own_agreement)

# --- Judges
# Judge templates, judges, runs, external label imports, audits, thresholds and trust: maintainers
# only. Judge labels sit beside model identities, and an adjudicator who saw a judge's verdict
# would no longer adjudicate blind, so the audit (and its disagreement queue) is the maintainers'.
# ``judging.selectors.judge_list_for_user`` / ``judge_run_list_for_user`` /
# ``template_list_for_user`` are the queryset twins of ``can_view_judges``.
# Judge data never reaches annotators or adjudicators: no annotation page or API reads the app.
can_manage_judges = is_active & (is_superuser | is_maintainer)
can_view_judges = is_active & (is_superuser | is_maintainer)
can_view_judge_audits = is_active & (is_superuser | is_maintainer)
can_trust_judges = is_active & (is_superuser | is_maintainer)

rules.add_perm("judging.manage_judges", can_manage_judges)
rules.add_perm("judging.view_judges", can_view_judges)
rules.add_perm("judging.view_audits", can_view_judge_audits)
rules.add_perm("judging.trust_judges", can_trust_judges)

# --- Releases and researcher data access
# The restricted tier of a release is open to maintainers (who cut it) and to a researcher whose
# grant on that release is active: ``status = approved and expires_at > now``, computed in SQL,
# with credentials not suspended (the access app answers through ``grant_facts_register``). Every
# page, download and API read asks ``can_access_restricted`` or its queryset twin
# ``access.selectors.release_list_restricted_for_user`` (which releases reach through their own
# extension point, ``releases.access_hooks``), and the test of the
# permission table checks that the two agree. The data committee decides who gets access but does
# not read the data itself; a delegated reviewer decides the requests of the releases naming them.


@rules.predicate
def has_verified_email(user: object) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    from allauth.account.models import EmailAddress

    return EmailAddress.objects.filter(user=user, verified=True).exists()


@rules.predicate
def is_credentialed(user: object) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    fact = _GRANT_FACTS.get("credentialed")
    return fact is not None and fact(user)


@rules.predicate
def has_active_grant(user: object, release: object) -> bool:
    if release is None or not getattr(user, "is_authenticated", False):
        return False
    fact = _GRANT_FACTS.get("active_grant")
    return fact is not None and fact(user, release)


@rules.predicate
def is_release_reviewer(user: object, release: object) -> bool:
    if release is None or not getattr(user, "is_authenticated", False):
        return False
    return release.reviewers.filter(pk=user.pk).exists()  # type: ignore[attr-defined]


@rules.predicate
def is_public_release(user: object, release: object) -> bool:
    return release is not None and bool(getattr(release, "is_public", False))


can_cut_releases = is_active & (is_superuser | is_maintainer)
can_access_restricted = is_active & (is_superuser | is_maintainer | has_active_grant)
can_review_credentials = is_active & (is_superuser | is_data_committee)
can_review_access = is_active & (is_superuser | is_data_committee | is_release_reviewer)
can_approve_public_tier = is_active & (is_superuser | is_data_committee)
# The public tier: anyone once approved; before, those who prepare and approve it.
can_read_public_tier = is_public_release | (is_active & (is_superuser | is_maintainer | is_data_committee))
can_apply_for_credentials = is_active & is_researcher & has_verified_email
can_request_access = is_active & is_researcher & has_verified_email & is_credentialed
can_view_audit = is_active & (is_superuser | is_maintainer)

rules.add_perm("releases.cut", can_cut_releases)
rules.add_perm("releases.access_restricted", can_access_restricted)
rules.add_perm("releases.read_public_tier", can_read_public_tier)
rules.add_perm("releases.approve_public_tier", can_approve_public_tier)
rules.add_perm("access.review_credentials", can_review_credentials)
rules.add_perm("access.review_access", can_review_access)
rules.add_perm("access.apply", can_apply_for_credentials)
rules.add_perm("access.request", can_request_access)
rules.add_perm("audit.view", can_view_audit)
