"""``manage.py check --deploy`` passes under the production settings with production variables set."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def production_environment(**overrides: str) -> dict[str, str]:
    # Only what a deployment sets: nothing of the test run's own DJANGO_*/DATABASE_* leaks in.
    env = {key: value for key, value in os.environ.items() if key in {"PATH", "HOME", "LANG", "SYSTEMROOT"}}
    env.update(
        DJANGO_SETTINGS_MODULE="medharm_web.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),  # 86 characters, many unique ones
        DJANGO_ALLOWED_HOSTS="medharm.example.org",
        DATABASE_URL="postgres://medharm:secret@db.example.org:5432/medharm",
        REDIS_URL="redis://redis.example.org:6379/0",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(overrides)
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_passes_with_production_variables() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_environment())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


REQUIRED = ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"]


@pytest.mark.parametrize("missing", REQUIRED)
def test_production_refuses_to_start_without_a_required_variable(missing: str) -> None:
    # (A developer's own .env file, which base.py reads, would supply the variable: none is in git.)
    env = production_environment()
    del env[missing]
    result = manage("check", env=env)
    assert result.returncode != 0
    assert f"Set the {missing} environment variable" in result.stderr


def test_check_deploy_catches_a_weak_secret_key() -> None:
    # The check is live, not silenced: a short key fails it.
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env=production_environment(DJANGO_SECRET_KEY="short")
    )
    assert result.returncode != 0
    assert "security.W009" in result.stderr + result.stdout
