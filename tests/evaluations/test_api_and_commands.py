"""Runs through the API (token auth) and the ``collection_run`` command: create, start, pause,
resume, cancel, status and streamed export, against our mock model server."""

import csv
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import ApiToken as Token
from accounts.roles import Role
from core.actors import SYSTEM
from evaluations.models import CollectionRun, ModelResponse, RunStatus
from mockmodel.app import MockServerConfig
from mockmodel.runner import MockServerThread
from tests.factories import QueryFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def server():
    with MockServerThread(MockServerConfig(latency_ms=2)) as mock:
        yield mock


@pytest.fixture
def api(client):
    maintainer = UserFactory(role=Role.MAINTAINER)
    token = Token.objects.create(user=maintainer)
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {token.key}"
    client.maintainer = maintainer
    return client


def register(api, server) -> None:
    for slug, model in (("general", "mock-model"), ("medical", "mock-medical-model")):
        reply = api.post(
            "/api/v1/endpoints/",
            {
                "slug": slug,
                "name": slug.title(),
                "kind": "openai_chat",
                "base_url": server.openai_base_url,
                "model_name": model,
                "family": "general" if slug == "general" else "medical",
                "api_key_env": "",
                "max_concurrency": 8,
            },
            content_type="application/json",
        )
        assert reply.status_code == 201, reply.content
    reply = api.post(
        "/api/v1/endpoints/",
        {
            "slug": "guard",
            "name": "Guard",
            "kind": "openai_chat",
            "base_url": server.openai_base_url,
            "model_name": "mock-guard",
            "family": "guardrail",
            "guard_format": "llama_guard",
        },
        content_type="application/json",
    )
    assert reply.status_code == 201, reply.content
    guard_id = reply.json()["id"]
    general_id = api.get("/api/v1/endpoints/general/").json()["id"]
    reply = api.post(
        "/api/v1/pipelines/",
        {
            "slug": "guarded",
            "name": "Guarded",
            "input_guard": guard_id,
            "model": general_id,
            "output_guard": guard_id,
        },
        content_type="application/json",
    )
    assert reply.status_code == 201, reply.content


def test_api_creates_and_runs_a_collection_then_exports_it(api, server) -> None:
    QueryFactory.create_batch(6)
    register(api, server)

    reply = api.post(
        "/api/v1/runs/",
        {
            "name": "api run",
            "endpoints": ["general", "medical"],
            "pipelines": ["guarded"],
            "samples": 2,
            "parameters": {"temperature": 0.2, "seed": 7},
            "start": True,
        },
        content_type="application/json",
    )

    assert reply.status_code == 201, reply.content
    run_id = reply.json()["id"]
    body = api.get(f"/api/v1/runs/{run_id}/").json()
    assert body["status"] == "completed"  # tasks run in-process in tests: collected on commit
    assert body["progress"]["total"] == 6 * 3 * 2
    assert body["progress"]["finished"] == 36
    assert [t["label"] for t in body["targets"]] == ["General", "Medical", "Guarded"]
    assert "api_key" not in json.dumps(body).lower().replace("api_key_env", "")

    export = api.get(f"/api/v1/runs/{run_id}/export.jsonl/")
    assert export.status_code == 200
    lines = b"".join(export.streaming_content).decode().splitlines()
    assert len(lines) == 36
    first = json.loads(lines[0])
    assert first["request"]["body"]["temperature"] == 0.2
    assert first["target"] == "General"

    responses = api.get(f"/api/v1/responses/?run={run_id}&outcome=collected").json()
    assert responses["count"] == ModelResponse.objects.filter(run_id=run_id, outcome="collected").count()


def test_api_refuses_unknown_parameters_and_targets(api, server) -> None:
    QueryFactory.create_batch(2)
    register(api, server)
    bad_param = api.post(
        "/api/v1/runs/",
        {"name": "x", "endpoints": ["general"], "parameters": {"temprature": 1}},
        content_type="application/json",
    )
    assert bad_param.status_code == 400
    assert "temprature" in bad_param.content.decode()
    unknown = api.post("/api/v1/runs/", {"name": "x", "endpoints": ["nope"]}, content_type="application/json")
    assert unknown.status_code == 400
    assert "No such endpoint: nope" in unknown.content.decode()
    assert CollectionRun.objects.count() == 0


def test_api_pause_resume_cancel_follow_the_state_machine(api, server) -> None:
    QueryFactory.create_batch(3)
    register(api, server)
    run_id = api.post(
        "/api/v1/runs/", {"name": "x", "endpoints": ["general"]}, content_type="application/json"
    ).json()["id"]
    paused = api.post(f"/api/v1/runs/{run_id}/pause/")  # queued: nothing to pause, the wrong state
    assert (paused.status_code, paused.json()["code"]) == (409, "conflict")
    assert api.post(f"/api/v1/runs/{run_id}/cancel/").json()["status"] == "cancelled"
    refused = api.post(f"/api/v1/runs/{run_id}/resume/")
    assert refused.status_code == 409  # a cancelled run cannot resume: the wrong state
    assert CollectionRun.objects.get(pk=run_id).status == RunStatus.CANCELLED


def test_command_creates_starts_reports_and_exports(server, tmp_path, capsys) -> None:
    maintainer = UserFactory(role=Role.MAINTAINER)
    QueryFactory.create_batch(4)
    from evaluations import services

    services.endpoint_create(
        actor=SYSTEM,
        slug="cli-model",
        name="CLI model",
        base_url=server.openai_base_url,
        model_name="mock-model",
    )
    call_command(
        "collection_run",
        "create",
        "--name",
        "cli",
        "--actor",
        maintainer.email,
        "--endpoint",
        "cli-model",
        "--samples",
        "2",
        "--temperature",
        "0",
        "--start",
    )
    run = CollectionRun.objects.get(name="cli")
    assert run.status == RunStatus.COMPLETED
    call_command("collection_run", "status", str(run.pk))
    out = capsys.readouterr().out
    assert f"run {run.pk}: running, 8 items" in out  # the status when it was handed to the worker
    assert "8/8 finished" in out
    assert "collected: 8" in out

    target = tmp_path / "responses.csv"
    call_command("collection_run", "export", str(run.pk), "--format", "csv", "--output", str(target))
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(rows) == 8
    assert {row["outcome"] for row in rows} == {"collected"}
    assert json.loads(rows[0]["request"])["body"]["temperature"] == 0

    with pytest.raises(CommandError, match="No endpoint with slug 'missing'"):
        call_command(
            "collection_run", "create", "--name", "x", "--actor", maintainer.email, "--endpoint", "missing"
        )
    with pytest.raises(CommandError, match="cannot be paused"):
        call_command("collection_run", "pause", str(run.pk))


def _cli_endpoint(server):
    from evaluations import services

    QueryFactory.create_batch(3)
    services.endpoint_create(
        actor=SYSTEM,
        slug="cli-local",
        name="CLI local",
        base_url=server.openai_base_url,
        model_name="mock-model",
    )
    return UserFactory(role=Role.MAINTAINER)


def test_with_no_broker_the_command_waits_for_its_run_and_says_so(server, settings, capsys) -> None:
    from evaluations.services import runs as run_services

    settings.COLLECTION_DISPATCH_IN_THREAD = True  # the embedded default: REDIS_URL unset
    settings.COLLECTION_WATCHDOG_SECONDS = 0.2
    maintainer = _cli_endpoint(server)

    call_command(
        "collection_run",
        "create",
        "--name",
        "local",
        "--actor",
        maintainer.email,
        "--endpoint",
        "cli-local",
        "--samples",
        "2",
        "--start",
    )

    run = CollectionRun.objects.get(name="local")
    out = capsys.readouterr().out
    assert "No broker (REDIS_URL is not set): collecting run" in out
    assert out.strip().endswith(f"run {run.pk}: completed, 6/6 finished")  # done when the command ends
    assert run.status == RunStatus.COMPLETED
    watchdog = run_services.collection_watchdog.thread
    if watchdog is not None:  # the local watchdog ends once no run is running
        watchdog.join(5)
        assert not watchdog.is_alive()


def test_create_start_with_the_broker_down_refuses_and_commits_nothing(server, settings) -> None:
    from audit.models import AuditEvent

    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.COLLECTION_DISPATCH_IN_THREAD = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:18599/0"  # nothing listens there
    maintainer = _cli_endpoint(server)
    events_before = AuditEvent.objects.count()

    with pytest.raises(CommandError, match="The task broker does not answer"):
        call_command(
            "collection_run",
            "create",
            "--name",
            "refused",
            "--actor",
            maintainer.email,
            "--endpoint",
            "cli-local",
            "--start",
        )

    assert CollectionRun.objects.filter(name="refused").count() == 0
    assert ModelResponse.objects.count() == 0
    assert AuditEvent.objects.count() == events_before
