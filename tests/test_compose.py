"""docker-compose.yml: the services, their health checks, start order and volumes; .env.example."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.conf import settings

PROJECT_DIR = Path(settings.BASE_DIR)
APP_SERVICES = ("web", "worker", "beat")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())


def test_the_seven_services(compose: dict) -> None:
    assert set(compose["services"]) == {"web", "worker", "beat", "postgres", "redis", "nginx", "mock"}
    assert compose["services"]["postgres"]["image"] == "postgres:16"
    assert compose["services"]["redis"]["image"] == "redis:7"
    for name in APP_SERVICES:
        assert compose["services"][name]["build"] == ".", name
    assert "gunicorn medharm_web.wsgi:application" in compose["services"]["web"]["command"]
    assert "migrate --noinput" in compose["services"]["web"]["command"]
    assert compose["services"]["worker"]["command"] == "celery -A medharm_web worker -l info"
    assert compose["services"]["beat"]["command"].startswith("celery -A medharm_web beat -l info")


def test_health_checks_on_postgres_redis_and_web(compose: dict) -> None:
    services = compose["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "/accounts/login/" in " ".join(services["web"]["healthcheck"]["test"])


def test_services_start_after_what_they_need_is_healthy(compose: dict) -> None:
    services = compose["services"]
    needs = {
        "web": {"postgres", "redis", "mock"},
        "worker": {"postgres", "redis", "mock", "web"},
        "beat": {"redis", "web"},
    }
    for name, wanted in needs.items():
        depends_on = services[name]["depends_on"]
        assert set(depends_on) == wanted, name
        assert {entry["condition"] for entry in depends_on.values()} == {"service_healthy"}, name


def test_named_volumes_for_database_static_and_release_files(compose: dict) -> None:
    assert set(compose["volumes"]) == {"postgres-data", "static", "media"}
    assert compose["services"]["postgres"]["volumes"] == ["postgres-data:/var/lib/postgresql/data"]
    assert compose["services"]["web"]["volumes"] == ["static:/app/var/static", "media:/app/var/media"]
    assert compose["services"]["worker"]["volumes"] == ["media:/app/var/media"]


def test_nginx_serves_static_files_and_the_internal_download_location(compose: dict) -> None:
    nginx = compose["services"]["nginx"]
    assert nginx["volumes"] == [
        "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro",
        "static:/srv/static:ro",
        "media:/srv/media:ro",
    ]
    assert nginx["depends_on"] == {"web": {"condition": "service_healthy"}}
    config = (PROJECT_DIR / "deploy" / "nginx.conf").read_text()
    protected = config[config.index("location /protected/") :].split("}")[0]
    assert "internal;" in protected
    assert "alias /srv/media/;" in protected
    environment = compose["services"]["web"]["environment"]
    assert environment["SENDFILE_BACKEND"] == "django_sendfile.backends.nginx"
    assert environment["SENDFILE_URL"] == "/protected"


def test_app_services_run_production_settings_on_the_stack(compose: dict) -> None:
    for name in APP_SERVICES:
        environment = compose["services"][name]["environment"]
        assert environment["DJANGO_SETTINGS_MODULE"] == "medharm_web.settings.production", name
        assert environment["DATABASE_URL"].endswith("@postgres:5432/medharm"), name
        assert environment["REDIS_URL"] == "redis://redis:6379/0", name
        assert environment["DJANGO_SECURE_SSL_REDIRECT"] == "${DJANGO_SECURE_SSL_REDIRECT:-false}", name
        for variable in ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"):
            assert variable in environment, (name, variable)
    # Only nginx's port is published, and only on this machine; gunicorn is reached through it.
    assert compose["services"]["nginx"]["ports"] == ["127.0.0.1:8000:80"]
    assert "ports" not in compose["services"]["web"]
    assert "ports" not in compose["services"]["postgres"]
    assert "ports" not in compose["services"]["redis"]


def test_the_mock_model_server_serves_the_demo_endpoints_inside_the_network(compose: dict) -> None:
    mock = compose["services"]["mock"]
    assert mock["image"] == "medharm:local"  # the platform's image: no second build to keep in step
    assert mock["command"].startswith("python -m mockmodel --host 0.0.0.0 --port 8765")
    assert mock["expose"] == ["8765"]
    assert "ports" not in mock  # never published on the host
    assert "http://127.0.0.1:8765/v1/models" in " ".join(mock["healthcheck"]["test"])
    # seed_demo (run in web) and the worker call it by its service name.
    for name in APP_SERVICES:
        assert compose["services"][name]["environment"]["MEDHARM_DEMO_MODEL_URL"] == "http://mock:8765/v1"


def test_env_example_holds_what_the_full_stack_commands_need() -> None:
    values: dict[str, str] = {}
    for line in (PROJECT_DIR / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    assert values["DATABASE_URL"] == "postgres://postgres@127.0.0.1:5432/medharm"  # what bin/services creates
    assert values["REDIS_URL"].startswith("redis://")  # a worker refuses to start without it
    readme = (PROJECT_DIR / "README.md").read_text()
    full_stack = readme[readme.index("## Full-stack mode") :].split("\n## ")[0]
    assert "cp .env.example .env" in full_stack
    assert "export REDIS_URL" not in full_stack  # one place for the values: the .env file


def dockerfile_instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (instruction, arguments) pairs: continuation lines joined, comments dropped."""
    text = (PROJECT_DIR / "Dockerfile").read_text()
    without_comments = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    logical = re.sub(r"\\\n\s*", " ", without_comments)
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip() if " " in line else "")
        for line in logical.splitlines()
        if line.strip()
    ]


def test_dockerfile_installs_locked_requirements_then_the_code_and_runs_unprivileged() -> None:
    instructions = dockerfile_instructions()
    kinds = [kind for kind, _ in instructions]
    assert instructions[0] == ("FROM", "python:3.11-slim")
    # The requirements (and the lock) are copied and installed before the code, so a code change
    # does not reinstall every package; the install honours the lock of tested versions.
    copy_requirements = instructions.index(("COPY", "requirements/ requirements/"))
    install = instructions.index(("RUN", "pip install -r requirements/base.txt -c requirements/lock.txt"))
    copy_code = instructions.index(("COPY", ". ."))
    assert copy_requirements < install < copy_code
    collect = next(i for i, (kind, args) in enumerate(instructions) if "collectstatic --noinput" in args)
    assert copy_code < collect < kinds.index("USER")
    assert ("USER", "medharm") in instructions
    assert instructions[-1][0] == "CMD"
    assert json.loads(instructions[-1][1])[:2] == ["gunicorn", "medharm_web.wsgi:application"]
    assert "gunicorn" in (PROJECT_DIR / "requirements" / "base.txt").read_text()


def _compose_command() -> list[str] | None:
    """``docker compose`` (the CLI plugin) where it works, else Debian's ``docker-compose``, which
    ``bin/setup test`` installs: both read the file with the Compose Specification's rules."""
    if shutil.which("docker") is not None:
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose") is not None:
        return ["docker-compose"]
    return None


def test_docker_compose_config_accepts_the_file() -> None:
    command = _compose_command()
    if command is None:
        if os.environ.get("CI"):
            pytest.fail("CI must check the compose file: bin/setup test installs docker-compose")
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    result = subprocess.run(
        [*command, "-f", "docker-compose.yml", "config", "-q"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_docker_compose_config_rejects_a_broken_file(tmp_path) -> None:
    command = _compose_command()
    if command is None:
        if os.environ.get("CI"):
            pytest.fail("CI must check the compose file: bin/setup test installs docker-compose")
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  web:\n    image: [unclosed\n")
    result = subprocess.run(
        [*command, "-f", str(broken), "config", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0  # the check above can fail
