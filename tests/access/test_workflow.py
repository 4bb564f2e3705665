"""Credentials, data use agreements, requests and grants, expiry and renewal, e-mails, tokens:
through the services (and the pages where the page is the point)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.utils import timezone

from access import orcid, services
from access.models import AccessRequest, CredentialStatus, RequestStatus, ResearcherToken
from access.selectors import agreement_current, grant_list_active
from accounts.roles import Role
from audit.models import AuditEvent
from releases.models import Release, ReleaseStatus
from tests.access.world import PURPOSE, credential
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def committee():
    return UserFactory(role=Role.DATA_COMMITTEE)


@pytest.fixture
def release():
    return Release.objects.create(
        slug="workflow",
        version=1,
        title="Workflow release",
        changelog="c",
        status=ReleaseStatus.READY,
        created_by=UserFactory(role=Role.MAINTAINER),
    )


@pytest.fixture
def researcher(committee):
    user = UserFactory(role=Role.RESEARCHER)
    credential(user, committee)
    return user


def _submit(user, release, **overrides):
    agreement = agreement_current()
    fields = {
        "purpose": PURPOSE,
        "agreement_version": agreement.version,
        "shown_hash": agreement.content_hash,
        "ip_address": "192.0.2.1",
        **overrides,
    }
    return services.request_submit(actor=user, release_id=release.pk, **fields)


# --- ORCID ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("0000-0002-1825-0097", True),  # ORCID's documented example
        ("https://orcid.org/0000-0002-1825-0097", True),
        ("0000-0002-1694-233X", True),  # a check character of 10 is written X
        ("0000-0002-1694-233x", True),
        ("0000-0002-1825-0098", False),  # one digit off
        ("0000-0002-1825-009", False),
        ("0000000218250097", False),
    ],
)
def test_orcid_checksum(value, valid) -> None:
    assert (orcid.problem(value) is None) is valid


# --- Credentials ---------------------------------------------------------------------------------


def test_profile_apply_and_committee_acceptance_with_reason(
    committee, django_capture_on_commit_callbacks
) -> None:
    user = UserFactory(role=Role.RESEARCHER)
    with pytest.raises(ValidationError, match="check digit"):
        services.profile_save(actor=user, data={"orcid": "0000-0002-1825-0098"})
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        credential(user, committee)
    profile = user.researcher_profile
    profile.refresh_from_db()
    assert (profile.status, profile.decided_by, profile.decision_reason) == (
        CredentialStatus.CREDENTIALED,
        committee,
        "Verified institution.",
    )
    assert [m.to for m in mail.outbox] == [[committee.email], [user.email]]
    assert list(
        AuditEvent.objects.filter(target_type="access.researcherprofile")
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["profile_save", "credential_apply", "credential_accept"]


def test_decisions_need_a_reason_and_a_committee_member(committee) -> None:
    user = UserFactory(role=Role.RESEARCHER)
    services.profile_save(
        actor=user,
        data={
            "full_name": "A",
            "institution": "B",
            "position": "C",
            "orcid": "0000-0002-1825-0097",
            "institutional_page": "https://example.org/a",
            "reference_name": "D",
            "reference_email": "d@example.org",
            "research_area": "E",
        },
    )
    profile = services.credential_apply(actor=user)
    with pytest.raises(ValidationError, match="reason is required"):
        services.credential_decide(actor=committee, profile_id=profile.pk, accept=False, reason="  ")
    for outsider in (user, UserFactory(role=Role.MAINTAINER), UserFactory(role=Role.ADJUDICATOR)):
        with pytest.raises(PermissionDenied):
            services.credential_decide(actor=outsider, profile_id=profile.pk, accept=True, reason="ok")
    services.credential_decide(actor=committee, profile_id=profile.pk, accept=False, reason="No affiliation.")
    profile.refresh_from_db()
    assert profile.status == CredentialStatus.REJECTED


def test_unverified_address_cannot_have_a_profile() -> None:
    user = UserFactory(role=Role.RESEARCHER)
    EmailAddress.objects.filter(user=user).update(verified=False)
    with pytest.raises(PermissionDenied):
        services.profile_save(actor=user, data={})


def test_suspension_stops_an_active_grant_at_once(researcher, committee, release) -> None:
    access_request = _submit(researcher, release)
    services.request_approve(actor=committee, request_id=access_request.pk)
    assert grant_list_active(user=researcher).count() == 1
    services.credential_suspend(
        actor=committee, profile_id=researcher.researcher_profile.pk, reason="Misuse."
    )
    assert grant_list_active(user=researcher).count() == 0
    with pytest.raises(PermissionDenied):
        _submit(researcher, release)


# --- Agreements and requests -------------------------------------------------------------------------


def test_signature_stores_version_hash_time_and_address(researcher, release) -> None:
    access_request = _submit(researcher, release)
    signature = access_request.signature
    agreement = agreement_current()
    assert (signature.version, signature.content_hash, signature.ip_address) == (
        agreement.version,
        agreement.content_hash,
        "192.0.2.1",
    )
    assert timezone.now() - signature.signed_at < timedelta(minutes=1)


def test_a_request_signed_against_an_older_text_is_refused(researcher, release, committee) -> None:
    old = agreement_current()
    services.agreement_create(actor=committee, title="Agreement", body="A new clause.\n" + old.body)
    with pytest.raises(ValidationError, match="changed \\(now version 2\\)"):
        _submit(researcher, release, agreement_version=old.version, shown_hash=old.content_hash)
    with pytest.raises(ValidationError, match="changed"):
        _submit(researcher, release, agreement_version=2, shown_hash=old.content_hash)
    assert AccessRequest.objects.count() == 0


def test_approval_defaults_to_twelve_months_and_emails_the_researcher(
    researcher, committee, release, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        access_request = _submit(researcher, release)
    # The request itself told the committee and acknowledged the researcher.
    assert sorted(m.to[0] for m in mail.outbox) == sorted([committee.email, researcher.email])
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        approved = services.request_approve(actor=committee, request_id=access_request.pk)
        assert mail.outbox == []  # nothing leaves before the decision commits
    assert len(callbacks) == 1
    assert abs((approved.expires_at - timezone.now()) - timedelta(days=365)) < timedelta(minutes=1)
    assert [m.to for m in mail.outbox] == [[researcher.email]]
    assert "approved" in mail.outbox[0].subject


def test_reject_and_revoke_require_reasons(researcher, committee, release) -> None:
    access_request = _submit(researcher, release)
    with pytest.raises(ValidationError):
        services.request_reject(actor=committee, request_id=access_request.pk, reason="")
    services.request_approve(actor=committee, request_id=access_request.pk)
    with pytest.raises(ValidationError):
        services.request_revoke(actor=committee, request_id=access_request.pk, reason=" ")
    revoked = services.request_revoke(
        actor=committee, request_id=access_request.pk, reason="Clause 2 breached."
    )
    assert (revoked.status, revoked.revoke_reason) == (RequestStatus.REVOKED, "Clause 2 breached.")
    assert grant_list_active(user=researcher).count() == 0


def test_only_committee_or_named_reviewers_decide_and_never_their_own(researcher, committee, release) -> None:
    access_request = _submit(researcher, release)
    delegate = UserFactory(role=Role.ADJUDICATOR)
    for outsider in (researcher, UserFactory(role=Role.MAINTAINER), delegate):
        with pytest.raises(PermissionDenied):
            services.request_approve(actor=outsider, request_id=access_request.pk)
    release.reviewers.add(delegate)
    assert (
        services.request_approve(actor=delegate, request_id=access_request.pk).status
        == RequestStatus.APPROVED
    )


def test_pending_requests_expire_never_accepted(
    researcher, committee, release, django_capture_on_commit_callbacks
) -> None:
    access_request = _submit(researcher, release)
    assert services.requests_expire(now=timezone.now()) == 0
    later = access_request.review_deadline + timedelta(seconds=1)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.requests_expire(now=later) == 1
    access_request.refresh_from_db()
    assert access_request.status == RequestStatus.EXPIRED
    assert access_request.expires_at is None
    assert grant_list_active(user=researcher).count() == 0
    assert [m.to for m in mail.outbox] == [[researcher.email]]
    with pytest.raises(ValidationError, match="not pending"):
        services.request_approve(actor=committee, request_id=access_request.pk)


def test_renewal_opens_before_expiry_and_requires_the_current_agreement(
    researcher, committee, release
) -> None:
    grant = services.request_approve(actor=committee, request_id=_submit(researcher, release).pk)
    agreement = agreement_current()
    kwargs = {
        "purpose": PURPOSE,
        "agreement_version": agreement.version,
        "shown_hash": agreement.content_hash,
    }
    with pytest.raises(ValidationError, match="Renewal opens"):
        services.request_renew(actor=researcher, grant_id=grant.pk, **kwargs)
    AccessRequest.objects.filter(pk=grant.pk).update(expires_at=timezone.now() + timedelta(days=10))
    services.agreement_create(actor=committee, title="Agreement v2", body="Version two text.")
    with pytest.raises(ValidationError, match="changed"):
        services.request_renew(actor=researcher, grant_id=grant.pk, **kwargs)
    current = agreement_current()
    renewal = services.request_renew(
        actor=researcher,
        grant_id=grant.pk,
        purpose=PURPOSE,
        agreement_version=current.version,
        shown_hash=current.content_hash,
    )
    assert (renewal.renews_id, renewal.signature.version) == (grant.pk, 2)
    grant.refresh_from_db()
    approved = services.request_approve(actor=committee, request_id=renewal.pk)
    # The renewed term runs on from the end of the current one.
    assert abs(approved.expires_at - (grant.expires_at + timedelta(days=365))) < timedelta(seconds=1)
    old_grant = AccessRequest.objects.get(pk=grant.pk)
    assert old_grant.signature.version == 1  # the grant says which version it was signed under


def test_researcher_pages_show_each_request_state(researcher, committee, release) -> None:
    pending = _submit(researcher, release)
    other = Release.objects.create(
        slug="workflow-2",
        version=1,
        title="Second",
        changelog="c",
        status=ReleaseStatus.READY,
        created_by=release.created_by,
    )
    expired = services.request_approve(actor=committee, request_id=_submit(researcher, other).pk)
    AccessRequest.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    client = Client()
    client.force_login(researcher)
    html = client.get("/access/").content.decode()
    assert f'data-request="{pending.pk}"' in html
    assert "Pending review" in html
    assert "Expired" in html  # approved but past its end: the list honours expiry like the checks do
    assert client.get(f"/access/requests/{pending.pk}/").status_code == 200
    stranger = UserFactory(role=Role.RESEARCHER)
    client.force_login(stranger)
    assert client.get(f"/access/requests/{pending.pk}/").status_code == 404  # scoped to its owner


def test_request_page_signs_the_text_it_showed(researcher, release) -> None:
    client = Client(REMOTE_ADDR="203.0.113.5")
    client.force_login(researcher)
    page = client.get(f"/access/releases/{release.pk}/request/")
    agreement = agreement_current()
    assert agreement.body.splitlines()[0] in page.content.decode()
    response = client.post(
        f"/access/releases/{release.pk}/request/",
        {
            "purpose": PURPOSE,
            "agreement_version": agreement.version,
            "agreement_sha256": agreement.content_hash,
            "accept": "on",
        },
    )
    assert response.status_code == 302
    signature = AccessRequest.objects.get(researcher=researcher).signature
    assert (signature.content_hash, signature.ip_address) == (agreement.content_hash, "203.0.113.5")
    bad = client.post(
        f"/access/releases/{release.pk}/request/",
        {"purpose": "short", "agreement_version": 1, "agreement_sha256": "x", "accept": "on"},
    )
    assert bad.status_code == 400


# --- Tokens ----------------------------------------------------------------------------------


def test_tokens_are_shown_once_stored_hashed_and_scoped_to_granted_releases(
    researcher, committee, release
) -> None:
    services.request_approve(actor=committee, request_id=_submit(researcher, release).pk)
    other = Release.objects.create(
        slug="not-granted",
        version=1,
        title="N",
        changelog="c",
        status=ReleaseStatus.READY,
        created_by=release.created_by,
    )
    with pytest.raises(ValidationError, match="releases you have access to"):
        services.token_issue(actor=researcher, name="laptop", release_ids=[release.pk, other.pk])
    issued = services.token_issue(actor=researcher, name="laptop", release_ids=[release.pk])
    stored = ResearcherToken.objects.get(pk=issued.token.pk)
    assert issued.key.startswith("mhr_")
    assert len(issued.key) > 40
    assert issued.key not in {stored.key_hash, stored.prefix}
    assert services.token_hash(issued.key) == stored.key_hash
    assert issued.key not in str(
        AuditEvent.objects.filter(action="token_issue").values_list("details", flat=True)
    )
    client = Client()
    client.force_login(researcher)
    page = client.get("/access/tokens/").content.decode()
    assert issued.key not in page
    assert stored.prefix in page


def _api(key: str, path: str):
    return Client().get(path, HTTP_AUTHORIZATION=f"Bearer {key}")


def test_token_reads_stop_at_the_next_request_after_revocation_expiry_or_token_revoke(world) -> None:
    user, release = world.users["granted"], world.release
    issued = services.token_issue(actor=user, name="script", release_ids=[release.pk])
    detail = f"/api/v1/releases/{release.pk}/"
    table = f"/api/v1/releases/{release.pk}/tables/labels/?limit=3"
    assert _api(issued.key, detail).status_code == 200
    rows = _api(issued.key, table).json()
    assert (rows["count"], len(rows["rows"])) == (16, 3)
    assert _api(issued.key, "/api/v1/queries/").status_code in (401, 403)  # opens nothing else
    assert _api(issued.key, f"/api/v1/releases/{world.other.pk}/").status_code == 403  # out of scope
    # Token expiry, then token revocation.
    ResearcherToken.objects.filter(pk=issued.token.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert _api(issued.key, detail).status_code == 401
    second = services.token_issue(actor=user, name="script 2", release_ids=[release.pk])
    services.token_revoke(actor=user, token_id=second.token.pk)
    assert _api(second.key, detail).status_code == 401
    # Grant revocation stops a live token at its next request.
    third = services.token_issue(actor=user, name="script 3", release_ids=[release.pk])
    assert _api(third.key, table).status_code == 200
    services.request_revoke(
        actor=world.users["committee"], request_id=world.grants["granted"].pk, reason="Ended."
    )
    assert _api(third.key, table).status_code == 403
    session = Client()
    session.force_login(user)
    assert session.get(f"/releases/{release.pk}/files/restricted/csv/labels.csv").status_code == 403
    assert AuditEvent.objects.filter(action="token_revoke", actor=user).count() == 1
    assert AuditEvent.objects.filter(action="api_read", actor=user).count() == 3


def test_range_requests_on_a_gated_download(world) -> None:
    client = Client()
    client.force_login(world.users["granted"])
    url = f"/releases/{world.release.pk}/files/restricted/csv/labels.csv"
    whole = b"".join(client.get(url).streaming_content)
    part = client.get(url, HTTP_RANGE="bytes=10-19")
    assert part.status_code == 206
    assert b"".join(part.streaming_content) == whole[10:20]
    assert part["Content-Range"] == f"bytes 10-19/{len(whole)}"
    assert part["Content-Length"] == "10"
    assert client.get(url, HTTP_RANGE=f"bytes={len(whole) + 5}-").status_code == 416
