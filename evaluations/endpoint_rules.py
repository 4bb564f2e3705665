"""Which API key variables and hosts model endpoints may use: the operator's settings
(``MODEL_KEY_ENV_PREFIX``, ``MODEL_KEY_ENV_NAMES``, ``MODEL_HOSTS_ALLOWED``), checked when an endpoint
is saved and again when a run calls it, so an endpoint saved before a setting changed is refused too.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings

from providers.secrets import KeyEnvPolicy

# Secrets a deployment commonly holds that the settings reader may not have been asked for.
ALWAYS_FORBIDDEN = frozenset(
    {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "EMAIL_URL", "TEST_REDIS_URL", "CELERY_BROKER_URL"}
)


class EndpointNotAllowedError(RuntimeError):
    """A run's endpoint points at a host outside the operator's allow-list."""


def key_env_policy() -> KeyEnvPolicy:
    return KeyEnvPolicy(
        prefix=settings.MODEL_KEY_ENV_PREFIX,
        allowed=frozenset(settings.MODEL_KEY_ENV_NAMES),
        forbidden=frozenset(settings.SETTINGS_ENV_NAMES) | ALWAYS_FORBIDDEN,
    )


def host_allowed(host: str, allowed: list[str]) -> bool:
    host = host.lower().rstrip(".")
    for pattern in allowed:
        pattern = pattern.lower().strip()
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and host != pattern[2:]:
                return True
        elif host == pattern:
            return True
    return False


def host_problem(base_url: str) -> str | None:
    """Why ``base_url`` may not be called, or ``None`` (no allow-list set: any host)."""
    allowed = list(settings.MODEL_HOSTS_ALLOWED)
    if not allowed:
        return None
    host = urlsplit(base_url).hostname or ""
    if host_allowed(host, allowed):
        return None
    return f"the host {host or base_url!r} is not in the operator's list of model hosts (MEDHARM_MODEL_HOSTS)"
