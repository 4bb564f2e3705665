"""The platform's roles and the model permissions each one holds: the single definition of both."""

from django.db import models


class Role(models.TextChoices):
    CLINICIAN = "clinician annotator", "Clinician annotator"
    ADJUDICATOR = "adjudicator", "Adjudicator"
    MAINTAINER = "maintainer", "Benchmark maintainer"
    DATA_COMMITTEE = "data committee", "Data committee"
    RESEARCHER = "researcher", "Researcher"


# Permissions are "app_label.codename". Reading query text is the sensitive one: researchers get it
# only through an access grant (a later issue), never through their role.
ROLE_PERMISSIONS: dict[Role, tuple[str, ...]] = {
    Role.CLINICIAN: (
        "querybank.view_category",
        "querybank.view_query",
    ),
    Role.ADJUDICATOR: (
        "querybank.view_category",
        "querybank.view_query",
    ),
    Role.MAINTAINER: (
        "querybank.view_category",
        "querybank.view_query",
        "querybank.add_query",
        "querybank.change_query",
        "querybank.import_queries",
        "querybank.export_queries",
        "querybank.view_taxonomy",
        "accounts.invite_user",
    ),
    Role.DATA_COMMITTEE: ("querybank.view_category",),
    Role.RESEARCHER: ("querybank.view_category",),
}

# Roles whose members must use a second factor: they change the benchmark, its gold labels or who
# may see it. ``accounts.policy.is_mfa_required`` is the one rule built on this (with the duties
# other apps register there, as a release's delegated reviewers).
MFA_REQUIRED_ROLES: frozenset[Role] = frozenset({Role.MAINTAINER, Role.DATA_COMMITTEE, Role.ADJUDICATOR})
