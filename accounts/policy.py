"""The access policy: every rule of who may see or do what, as named predicates, in one place.

Each predicate that gates a list has a selector returning the same answer as a queryset
(``querybank.selectors.query_list_for_user`` for ``can_read_query_text``); tests check that the
two agree. Views and API views ask for the permission names registered at the bottom.
"""

import rules
from allauth.mfa.models import Authenticator

from accounts.roles import MFA_REQUIRED_ROLES, Role


def _has_role(role: Role) -> rules.Predicate:
    return rules.is_group_member(role.value)


is_clinician = _has_role(Role.CLINICIAN)
is_adjudicator = _has_role(Role.ADJUDICATOR)
is_maintainer = _has_role(Role.MAINTAINER)
is_data_committee = _has_role(Role.DATA_COMMITTEE)
is_researcher = _has_role(Role.RESEARCHER)
is_superuser = rules.is_superuser
is_active = rules.is_active


@rules.predicate
def is_mfa_required(user: object) -> bool:
    """Staff, maintainers and the data committee can change the benchmark or who may see it."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_staff or user.is_superuser:  # type: ignore[attr-defined]
        return True
    names = set(user.groups.values_list("name", flat=True))  # type: ignore[attr-defined]
    return any(role.value in names for role in MFA_REQUIRED_ROLES)


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
can_import_queries = is_active & (is_superuser | is_maintainer)
can_export_queries = is_active & (is_superuser | is_maintainer)
can_invite_users = is_active & (is_superuser | is_maintainer)

rules.add_perm("querybank.read_query_text", can_read_query_text)
rules.add_perm("querybank.browse_categories", can_browse_categories)
rules.add_perm("querybank.run_import", can_import_queries)
rules.add_perm("querybank.run_export", can_export_queries)
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

rules.add_perm("annotations.annotate", can_annotate)
rules.add_perm("annotations.adjudicate", can_adjudicate)
rules.add_perm("annotations.manage_campaigns", can_manage_campaigns)
rules.add_perm("annotations.unblind", can_unblind)
rules.add_perm("annotations.import_annotations", can_import_annotations)
rules.add_perm("annotations.read_rubrics", can_read_rubrics)

# --- Scores and agreement
# Dashboards, drill-downs and reports: maintainers and adjudicators, who see labels already
# (``scoring.selectors.campaign_list_for_scores`` is the queryset twin). Annotators are named for
# maintainers only; everyone else sees pseudonyms. A clinician sees only their own agreement with
# the gold labels, and only of a closed campaign in whose pool they are: while a campaign is open,
# even one's own figures could reveal the gold label of an item (``campaign_list_for_own_agreement``).


@rules.predicate
def is_closed_campaign(user: object, campaign: object) -> bool:
    """Without a campaign: true (the role check alone). With one: the campaign is closed."""
    return campaign is None or getattr(campaign, "status", None) == "closed"


can_view_scores = is_active & (is_superuser | is_maintainer | is_adjudicator)
can_manage_scores = is_active & (is_superuser | is_maintainer)
can_see_annotator_names = is_active & (is_superuser | is_maintainer)
can_view_own_agreement = is_active & is_clinician & is_in_campaign_pool & is_closed_campaign

rules.add_perm("scoring.view_scores", can_view_scores)
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
