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
