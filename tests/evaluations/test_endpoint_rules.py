"""An endpoint may name only an allowed key variable and, when the operator lists model hosts, only
those hosts (issue 8, leak 5): refused when saved through the page and the API, and again when a run
calls an endpoint saved earlier, before any request carries a key anywhere."""

import json

import pytest
from django.test import Client

from accounts.roles import Role
from evaluations.endpoint_rules import key_env_policy
from evaluations.models import Endpoint
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _maintainer_client() -> Client:
    maintainer = UserFactory(role=Role.MAINTAINER)
    client = Client()
    client.force_login(maintainer)
    return client


def _api_create(client: Client, **fields: object) -> object:
    body = {
        "name": "Listener",
        "slug": "listener",
        "kind": "openai_chat",
        "base_url": "http://127.0.0.1:18199/v1",
        "model_name": "m",
        "api_key_env": "",
        **fields,
    }
    return client.post("/api/v1/endpoints/", json.dumps(body), content_type="application/json")


@pytest.mark.parametrize(
    "name", ["DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "EMAIL_URL", "IMPORT_MAX_BYTES", "PATH"]
)
def test_the_platforms_own_variables_cannot_be_named(name: str) -> None:
    response = _api_create(_maintainer_client(), api_key_env=name)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "api_key_env" in body["errors"]
    assert not Endpoint.objects.filter(slug="listener").exists()


def test_prefixed_and_listed_names_are_allowed_but_never_settings(settings: object) -> None:
    client = _maintainer_client()
    assert _api_create(client, api_key_env="MEDHARM_KEY_OPENAI").status_code == 201
    settings.MODEL_KEY_ENV_NAMES = ["OPENAI_API_KEY", "DATABASE_URL"]  # an operator's mistake
    assert _api_create(client, slug="second", api_key_env="OPENAI_API_KEY").status_code == 201
    assert _api_create(client, slug="third", api_key_env="DATABASE_URL").status_code == 400
    policy = key_env_policy()
    assert policy.problem("DJANGO_SECRET_KEY") is not None
    assert policy.problem("MEDHARM_MODEL_KEY_ENV_NAMES") is not None  # a setting itself


def test_the_host_allow_list_refuses_other_hosts(settings: object) -> None:
    client = _maintainer_client()
    settings.MODEL_HOSTS_ALLOWED = ["api.openai.com", "*.models.example.org"]
    refused = _api_create(client, base_url="http://127.0.0.1:18199/v1")
    assert (refused.status_code, list(refused.json()["errors"])) == (400, ["base_url"])
    assert _api_create(client, slug="a", base_url="https://api.openai.com/v1").status_code == 201
    assert _api_create(client, slug="b", base_url="https://eu.models.example.org/v1").status_code == 201
    assert (
        _api_create(client, slug="c", base_url="https://models.example.org.evil.test/v1").status_code == 400
    )
