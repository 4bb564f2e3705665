"""Collection permission table: role x endpoint x object -> exact status. Only maintainers reach
the registry, runs and raw responses (which name the model); everyone else gets 403."""

import pytest
from django.test import Client

from accounts.models import ApiToken as Token
from accounts.roles import Role
from core.actors import SYSTEM
from evaluations import services
from evaluations.models import CollectionRun, ModelResponse
from querybank.models import Query
from tests.factories import QueryFactory, UserFactory
from tests.test_permissions import LOGIN, ROLES, _cases, _read

pytestmark = pytest.mark.django_db

# {run}, {response}: an existing run and one of its responses; {missing}: ids that do not exist.
PAGE_TABLE: dict[str, tuple[object, ...]] = {
    "/collection/": (LOGIN, 403, 403, 403, 200, 403),
    "/collection/registry/": (LOGIN, 403, 403, 403, 200, 403),
    "/collection/registry/endpoints/new/": (LOGIN, 403, 403, 403, 200, 403),
    "/collection/runs/new/": (LOGIN, 403, 403, 403, 200, 403),
    "/collection/runs/{run}/": (LOGIN, 403, 403, 403, 200, 403),
    "/collection/runs/{missing}/": (LOGIN, 403, 403, 403, 404, 403),
    "/collection/runs/{run}/responses/": (LOGIN, 403, 403, 403, 200, 403),
    "/collection/runs/{run}/responses/{response}/": (LOGIN, 403, 403, 403, 200, 403),
    "/collection/runs/{other_run}/responses/{response}/": (LOGIN, 403, 403, 403, 404, 403),
    "/collection/runs/{run}/export.jsonl": (LOGIN, 403, 403, 403, 200, 403),
}
API_TABLE: dict[str, tuple[int, ...]] = {
    "/api/v1/endpoints/": (403, 403, 403, 403, 200, 403),
    "/api/v1/pipelines/": (403, 403, 403, 403, 200, 403),
    "/api/v1/runs/": (403, 403, 403, 403, 200, 403),
    "/api/v1/runs/{run}/": (403, 403, 403, 403, 200, 403),
    "/api/v1/runs/{missing}/": (403, 403, 403, 403, 404, 403),
    "/api/v1/runs/{run}/export.csv/": (403, 403, 403, 403, 200, 403),
    "/api/v1/responses/": (403, 403, 403, 403, 200, 403),
    "/api/v1/responses/{response}/": (403, 403, 403, 403, 200, 403),
}


@pytest.fixture
def objects() -> dict[str, int]:
    QueryFactory.create_batch(2)
    endpoint = services.endpoint_create(
        actor=SYSTEM, slug="m", name="M", base_url="http://127.0.0.1:9/v1", model_name="secret-model-name"
    )
    owner = UserFactory(role=Role.MAINTAINER)
    run = services.run_create(actor=owner, name="r", queries=Query.objects.all(), targets=[endpoint])
    other = services.run_create(actor=owner, name="other", queries=Query.objects.all(), targets=[endpoint])
    response = ModelResponse.objects.filter(run=run).first()
    return {"run": run.pk, "other_run": other.pk, "response": response.pk, "missing": run.pk + 100_000}


def _url(path: str, objects: dict[str, int]) -> str:
    return path.format(**objects)


@pytest.mark.parametrize(("role", "path", "expected"), _cases({**PAGE_TABLE, **API_TABLE}, ROLES))
def test_session(client: Client, make_user, objects, role: object, path: str, expected: object) -> None:
    if role != "anonymous":
        client.force_login(make_user(role))
    url = _url(path, objects)
    response = client.get(url)
    body = _read(response)
    if expected == LOGIN:
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next={url}"
        return
    assert response.status_code == expected
    if expected != 200:
        assert b"secret-model-name" not in body  # no refusal leaks the model's identity


@pytest.mark.parametrize(("role", "path", "expected"), _cases(API_TABLE, ROLES[1:]))
def test_api_with_token(client: Client, make_user, objects, role: object, path: str, expected: int) -> None:
    token = Token.objects.create(user=make_user(role))
    response = client.get(_url(path, objects), HTTP_AUTHORIZATION=f"Token {token.key}")
    _read(response)
    assert response.status_code == expected


@pytest.mark.parametrize("action", ["start", "pause", "resume", "cancel", "retry-failed"])
@pytest.mark.parametrize("role", [Role.RESEARCHER, Role.CLINICIAN, Role.ADJUDICATOR, Role.DATA_COMMITTEE])
def test_only_maintainers_steer_runs(client: Client, make_user, objects, role: Role, action: str) -> None:
    client.force_login(make_user(role))
    before = CollectionRun.objects.get(pk=objects["run"]).status
    page = client.post(f"/collection/runs/{objects['run']}/{action}/")
    api = client.post(f"/api/v1/runs/{objects['run']}/{action}/")
    assert (page.status_code, api.status_code) == (403, 403)
    assert CollectionRun.objects.get(pk=objects["run"]).status == before
