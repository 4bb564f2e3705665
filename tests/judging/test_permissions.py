"""Judging permission table: role x endpoint x object -> exact status. Only maintainers reach
templates, judges, runs, imports and audits (judge verdicts sit beside model identities, and an
adjudicator who saw them would no longer decide blind); the policy predicates agree with their
selector twins."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client

from accounts.models import ApiToken as Token
from accounts.policy import can_manage_judges, can_view_judge_audits, can_view_judges
from accounts.roles import Role
from judging.models import JudgeTemplate
from judging.selectors import (
    audit_campaign_list_for_user,
    judge_list_for_user,
    judge_run_list_for_user,
    template_list_for_user,
)
from judging.services import judge_create, judge_run_create
from tests.annotations.factories import EndpointFactory, response_campaign
from tests.factories import UserFactory
from tests.test_permissions import LOGIN, ROLES, _cases, _read

pytestmark = pytest.mark.django_db

PAGE_TABLE: dict[str, tuple[object, ...]] = {
    "/judges/": (LOGIN, 403, 403, 403, 200, 403),
    "/judges/templates/new/": (LOGIN, 403, 403, 403, 200, 403),
    "/judges/templates/new/?from={template}": (LOGIN, 403, 403, 403, 200, 403),
    "/judges/templates/new/?from={missing}": (LOGIN, 403, 403, 403, 404, 403),
    "/judges/new/": (LOGIN, 403, 403, 403, 200, 403),
    "/judges/runs/new/": (LOGIN, 403, 403, 403, 200, 403),
    "/judges/runs/{run}/": (LOGIN, 403, 403, 403, 200, 403),
    "/judges/runs/{missing}/": (LOGIN, 403, 403, 403, 404, 403),
    "/judges/imports/": (LOGIN, 403, 403, 403, 200, 403),
    "/judges/audit/?campaign={campaign}&judge=run:{run}": (LOGIN, 403, 403, 403, 200, 403),
    "/judges/audit/?campaign={missing}&judge=run:{run}": (LOGIN, 403, 403, 403, 404, 403),
    "/judges/audit/?campaign={campaign}&judge=run:{missing}": (LOGIN, 403, 403, 403, 404, 403),
}
API_TABLE: dict[str, tuple[int, ...]] = {
    "/api/v1/judge-templates/": (403, 403, 403, 403, 200, 403),
    "/api/v1/judge-templates/{template}/": (403, 403, 403, 403, 200, 403),
    "/api/v1/judges/": (403, 403, 403, 403, 200, 403),
    "/api/v1/judges/{judge}/": (403, 403, 403, 403, 200, 403),
    "/api/v1/judge-runs/": (403, 403, 403, 403, 200, 403),
    "/api/v1/judge-runs/{run}/": (403, 403, 403, 403, 200, 403),
    "/api/v1/judge-runs/{missing}/": (403, 403, 403, 403, 404, 403),
    "/api/v1/judge-imports/": (403, 403, 403, 403, 200, 403),
    "/api/v1/judge-audits/?campaign={campaign}&judge=run:{run}": (403, 403, 403, 403, 200, 403),
    "/api/v1/judge-audits/?campaign={missing}&judge=run:{run}": (403, 403, 403, 403, 404, 403),
    "/api/v1/judge-audits/?campaign={campaign}&judge=run:{missing}": (403, 403, 403, 403, 400, 403),
    "/api/v1/judge-thresholds/": (403, 403, 403, 403, 200, 403),
    "/api/v1/judge-trust/": (403, 403, 403, 403, 200, 403),
}


@pytest.fixture
def objects() -> dict[str, object]:
    setup = response_campaign(queries=2, models=2)
    template = JudgeTemplate.objects.get(slug="harmbench-unsafe", version=1)
    judge = judge_create(
        actor=setup.maintainer, slug="j", name="J", endpoint=EndpointFactory(model_name="secret-judge-model"),
        template=template,
    )  # fmt: skip
    run = judge_run_create(actor=setup.maintainer, judge=judge, collection_run=setup.run)
    return {
        "template": template.pk, "judge": judge.slug, "run": run.pk, "campaign": setup.campaign.pk,
        "missing": 987654,
    }  # fmt: skip


@pytest.mark.parametrize(("role", "path", "expected"), _cases({**PAGE_TABLE, **API_TABLE}, ROLES))
def test_session(client: Client, make_user, objects, role: object, path: str, expected: object) -> None:
    if role != "anonymous":
        client.force_login(make_user(role))
    url = path.format(**objects)
    response = client.get(url)
    body = _read(response)
    if expected == LOGIN:
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")
        return
    assert response.status_code == expected
    if expected != 200:
        assert b"secret-judge-model" not in body


@pytest.mark.parametrize(("role", "path", "expected"), _cases(API_TABLE, ROLES[1:]))
def test_api_with_token(client: Client, make_user, objects, role: object, path: str, expected: int) -> None:
    token = Token.objects.create(user=make_user(role))
    response = client.get(path.format(**objects), HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == expected


TEMPLATE = {"slug": "x", "title": "x", "prompt": "{{response}}", "parser": "yes_no_unsafe"}
WRITES = [
    ("/judges/templates/new/", {**TEMPLATE, "fields": "unsafe", "action": "save"}),
    ("/judges/audit/thresholds/", {"field": "unsafe", "min_kappa": "0", "max_abs_bias": "1"}),
    ("/api/v1/judge-templates/", {**TEMPLATE, "fields": ["unsafe"]}),
    ("/api/v1/judge-thresholds/", {"field": "unsafe", "min_kappa": 0, "max_abs_bias": 1}),
]  # fmt: skip


@pytest.mark.parametrize(("path", "data"), WRITES)
@pytest.mark.parametrize("role", [Role.RESEARCHER, Role.CLINICIAN, Role.ADJUDICATOR, Role.DATA_COMMITTEE])
def test_only_maintainers_write(
    client: Client, make_user, objects, role: Role, path: str, data: dict
) -> None:
    client.force_login(make_user(role))
    before = JudgeTemplate.objects.count()
    if path.startswith("/api/"):
        response = client.post(path, data, content_type="application/json")
    else:
        response = client.post(path, data)
    assert response.status_code == 403
    assert JudgeTemplate.objects.count() == before


KINDS = ["anonymous", "superuser", "no role", "inactive maintainer", *[r.value for r in Role]]
ALLOWED = {"superuser", Role.MAINTAINER.value}


def _user(kind: str):
    if kind == "anonymous":
        return AnonymousUser()
    if kind == "superuser":
        return UserFactory(is_superuser=True, is_staff=True)
    if kind == "no role":
        return UserFactory()
    if kind == "inactive maintainer":
        return UserFactory(role=Role.MAINTAINER, is_active=False)
    return UserFactory(role=Role(kind))


@pytest.mark.parametrize("kind", KINDS)
def test_predicates_agree_with_their_selectors(objects, kind: str) -> None:
    user = _user(kind)
    allowed = kind in ALLOWED
    assert can_view_judges(user) is allowed
    assert can_manage_judges(user) is allowed
    assert can_view_judge_audits(user) is allowed
    assert template_list_for_user(user=user).exists() is allowed
    assert judge_list_for_user(user=user).exists() is allowed
    assert judge_run_list_for_user(user=user).exists() is allowed
    assert audit_campaign_list_for_user(user=user).exists() is allowed
