"""The permission table of every data endpoint, HTML and API: role x endpoint -> exact status.

One world (two built releases, an account in every state) serves the whole table; each cell is
requested in turn and every mismatch is reported at once. Alongside each cell: the audit event an
access must leave (and that a refusal must not), and the agreement of the policy predicate, its
selector twin, the list API and the download answer.
"""

from __future__ import annotations

import pytest
from django.test import Client

from access.selectors import release_list_restricted_for_user
from accounts.policy import can_access_restricted
from audit.actions import AuditAction
from audit.models import AuditEvent
from tests.access.world import ROLES, AccessWorld

LOGIN = "LOGIN"  # a page's answer to a visitor: 302 to the login page
R = "R"  # the release page, with the restricted file list shown (and its view audited)

A = "{a}"
B = "{b}"
PAGE = f"/releases/{A}/"
PREVIEW = f"/releases/{A}/preview/labels/"
FILE_RESTRICTED = f"/releases/{A}/files/restricted/parquet/labels/labels-00000.parquet"
FILE_PUBLIC_UNPUBLISHED = f"/releases/{A}/files/public/csv/scores.csv"
FILE_PUBLIC_PUBLISHED = f"/releases/{B}/files/public/csv/scores.csv"
FILE_MISSING = f"/releases/{A}/files/restricted/csv/nothing.csv"
REPORT = f"/access/review/releases/{A}/report/"
QUEUE = "/access/review/"
API_DETAIL = f"/api/v1/releases/{A}/"
API_FILE = f"/api/v1/releases/{A}/files/restricted/csv/labels.csv"
API_TABLE = f"/api/v1/releases/{A}/tables/labels/?limit=5"
API_LIST = "/api/v1/releases/"

# Roles, in the order of ROLES:
#   anonymous, unverified, credentialed, granted, expired, revoked, suspended, other_grantee,
#   clinician, adjudicator, committee, reviewer (delegated for A), maintainer
TABLE: dict[str, tuple[object, ...]] = {
    PAGE: (404, 200, 200, R, 200, 200, 200, 200, 200, 200, 200, 200, R),
    PREVIEW: (LOGIN, 403, 403, 200, 403, 403, 403, 403, 403, 403, 403, 403, 200),
    FILE_RESTRICTED: (404, 403, 403, 200, 403, 403, 403, 403, 403, 403, 403, 403, 200),
    FILE_PUBLIC_UNPUBLISHED: (404, 403, 403, 403, 403, 403, 403, 403, 403, 403, 200, 403, 200),
    FILE_PUBLIC_PUBLISHED: (200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    FILE_MISSING: (404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404),
    REPORT: (LOGIN, 403, 403, 403, 403, 403, 403, 403, 403, 403, 200, 200, 403),
    QUEUE: (LOGIN, 403, 403, 403, 403, 403, 403, 403, 403, 403, 200, 200, 403),
    API_DETAIL: (401, 403, 403, 200, 403, 403, 403, 403, 403, 403, 403, 403, 200),
    API_FILE: (401, 403, 403, 200, 403, 403, 403, 403, 403, 403, 403, 403, 200),
    API_TABLE: (401, 403, 403, 200, 403, 403, 403, 403, 403, 403, 403, 403, 200),
    API_LIST: (401, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
}
# The action each successful access to restricted data must leave in the audit trail.
AUDITED = {
    PAGE: AuditAction.RELEASE_VIEW,
    PREVIEW: AuditAction.RELEASE_VIEW,
    FILE_RESTRICTED: AuditAction.FILE_DOWNLOAD,
    API_DETAIL: AuditAction.API_READ,
    API_FILE: AuditAction.FILE_DOWNLOAD,
    API_TABLE: AuditAction.API_READ,
}


def _observed(response, path: str) -> object:
    if response.status_code == 302 and "/accounts/login/" in response["Location"]:
        return LOGIN
    if path == PAGE and response.status_code == 200 and b'id="restricted-files"' in response.content:
        return R
    return response.status_code


def _client(world: AccessWorld, role: str) -> Client:
    client = Client()
    user = world.users[role]
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.django_db
def test_permission_table_with_audit_and_twin_agreement(world: AccessWorld) -> None:
    a, b = world.release, world.other
    mismatches: list[str] = []
    for path, expected_row in TABLE.items():
        url = path.format(a=a.pk, b=b.pk)
        for role, expected in zip(ROLES, expected_row, strict=True):
            before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
            response = _client(world, role).get(url)
            observed = _observed(response, path)
            if observed != expected:
                mismatches.append(f"{role:13} {path:60} expected {expected}, got {observed}")
            if path == API_LIST and observed == 200:
                listed = {row["id"] for row in response.json()["results"]}
                twin = set(
                    release_list_restricted_for_user(user=world.users[role]).values_list("pk", flat=True)
                )
                if listed != twin:
                    mismatches.append(f"{role:13} {path:60} lists {listed}, the selector {twin}")
            if hasattr(response, "streaming_content"):
                b"".join(response.streaming_content)
            new = list(
                AuditEvent.objects.filter(id__gt=before).values_list("action", "actor_id", "target_id")
            )
            accessed = observed in (200, R) and path in AUDITED and (path != PAGE or observed == R)
            if accessed:
                user = world.users[role]
                want = [(AUDITED[path].value, user.pk, str(a.pk))]
                if new != want:
                    mismatches.append(f"{role:13} {path:60} audit {new}, expected {want}")
            elif new:
                mismatches.append(f"{role:13} {path:60} left audit events {new} without access")
    assert mismatches == []


@pytest.mark.django_db
def test_predicate_selector_and_download_agree_for_every_role_and_release(world: AccessWorld) -> None:
    """The named predicate, its queryset twin and the gated download give one answer per case."""
    answers = {}
    for role in ROLES:
        user = world.users[role]
        twin = set(release_list_restricted_for_user(user=user).values_list("pk", flat=True))
        for release in (world.release, world.other):
            predicate = bool(can_access_restricted(user, release)) if user is not None else False
            status = (
                _client(world, role)
                .get(f"/releases/{release.pk}/files/restricted/csv/labels.csv")
                .status_code
            )
            answers[(role, release.slug)] = (predicate, release.pk in twin, status == 200)
    disagreeing = {case: answer for case, answer in answers.items() if len(set(answer)) != 1}
    assert disagreeing == {}
    granted = sorted(case for case, answer in answers.items() if answer[0])
    assert granted == [
        ("granted", "medharm-test"),
        ("maintainer", "medharm-other"),
        ("maintainer", "medharm-test"),
        ("other_grantee", "medharm-other"),
    ]
