"""The data-access world: two built releases and one account in every state the policy knows.

Everything is made through the services (profile, application, decision, request, approval,
revocation, suspension), except that an expired grant is a granted one whose end is moved into the
past, and an unverified account is a researcher whose address was never confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.utils import timezone

from access import services
from access.models import AccessRequest
from access.selectors import agreement_current
from accounts.models import User
from accounts.roles import Role
from releases.models import Release
from releases.models.releases import DATASHEET_SECTIONS
from releases.services import release_build, release_cut, release_public_approve
from tests.factories import UserFactory
from tests.scoring.factories import ScoringWorld, scoring_world

DATASHEET = {key: f"Synthetic answer about {key} for the test release." for key, _ in DATASHEET_SECTIONS}
PURPOSE = "Measuring over-refusal of medical language models on caution queries for a safety paper."

ROLES = (
    "anonymous",
    "unverified",
    "credentialed",
    "granted",
    "expired",
    "revoked",
    "suspended",
    "other_grantee",
    "clinician",
    "adjudicator",
    "committee",
    "reviewer",
    "maintainer",
)


@dataclass
class AccessWorld:
    scoring: ScoringWorld
    release: Release  # A: restricted, public tier not published
    other: Release  # B: public tier published
    users: dict[str, User | None] = field(default_factory=dict)
    grants: dict[str, AccessRequest] = field(default_factory=dict)


def cut(
    maintainer: User, campaign_id: int, slug: str, *, sample: list[int], reviewers: list[int] = ()
) -> Release:
    release = release_cut(
        actor=maintainer,
        slug=slug,
        title=f"Test release {slug}",
        changelog="First cut for the tests.",
        datasheet=DATASHEET,
        campaign_ids=[campaign_id],
        sample_query_ids=sample,
        reviewer_ids=list(reviewers),
    )
    return release_build(release_id=release.pk)


def credential(user: User, committee: User, *, orcid: str = "0000-0002-1825-0097") -> None:
    services.profile_save(
        actor=user,
        data={
            "full_name": f"Dr {user.email.split('@')[0]}",
            "institution": "Example University",
            "position": "Postdoctoral researcher",
            "orcid": orcid,
            "institutional_page": "https://example.org/people/researcher",
            "reference_name": "Prof. Reference",
            "reference_email": "reference@example.org",
            "research_area": "Safety evaluation of language models.",
        },
    )
    services.credential_apply(actor=user)
    profile = user.researcher_profile
    services.credential_decide(
        actor=committee, profile_id=profile.pk, accept=True, reason="Verified institution."
    )


def grant(user: User, release: Release, committee: User) -> AccessRequest:
    agreement = agreement_current()
    request = services.request_submit(
        actor=user,
        release_id=release.pk,
        purpose=PURPOSE,
        agreement_version=agreement.version,
        shown_hash=agreement.content_hash,
        ip_address="192.0.2.7",
    )
    return services.request_approve(actor=committee, request_id=request.pk)


def access_world() -> AccessWorld:
    scoring = scoring_world(close=True)
    maintainer, committee = scoring.maintainer, scoring.committee
    reviewer = UserFactory(role=Role.ADJUDICATOR)
    sample = [scoring.queries[1].pk, scoring.queries[3].pk]
    release = cut(maintainer, scoring.campaign.pk, "medharm-test", sample=sample, reviewers=[reviewer.pk])
    other = cut(maintainer, scoring.campaign.pk, "medharm-other", sample=sample)
    release_public_approve(actor=committee, release_id=other.pk)
    world = AccessWorld(scoring=scoring, release=release, other=other)
    users: dict[str, User | None] = {"anonymous": None}
    unverified = UserFactory(role=Role.RESEARCHER)
    EmailAddress.objects.filter(user=unverified).update(verified=False)
    users["unverified"] = unverified
    for name in ("credentialed", "granted", "expired", "revoked", "suspended", "other_grantee"):
        users[name] = UserFactory(role=Role.RESEARCHER)
        credential(users[name], committee)
    for name in ("granted", "expired", "revoked", "suspended"):
        world.grants[name] = grant(users[name], release, committee)
    world.grants["other_grantee"] = grant(users["other_grantee"], other, committee)
    AccessRequest.objects.filter(pk=world.grants["expired"].pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    services.request_revoke(
        actor=committee, request_id=world.grants["revoked"].pk, reason="Breach of clause 2."
    )
    services.credential_suspend(
        actor=committee,
        profile_id=users["suspended"].researcher_profile.pk,
        reason="Institution no longer confirms the appointment.",
    )
    users["clinician"] = scoring.annotator_a
    users["adjudicator"] = scoring.adjudicator
    users["committee"] = committee
    users["reviewer"] = reviewer
    users["maintainer"] = maintainer
    world.users = users
    return world
