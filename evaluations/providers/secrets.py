"""API keys read from named environment variables, kept out of reprs, outcomes and logs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

REDACTED_KEY = "[API KEY REDACTED]"


class MissingApiKeyError(RuntimeError):
    """The endpoint names an environment variable that is unset or empty. Names the variable only."""


class ApiKey:
    """A key value that refuses to show itself: ``repr``/``str`` print a placeholder, so a key that
    ends up in a traceback's locals, a log call or an f-string prints nothing secret."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The key, for the one place that needs it: the request header."""
        return self._value

    def scrub(self, text: str) -> str:
        """``text`` with every occurrence of the key replaced (servers echo keys in 401 bodies)."""
        if self._value and self._value in text:
            return text.replace(self._value, REDACTED_KEY)
        return text

    def scrub_json(self, value: Any) -> Any:
        """A JSON-like value with the key scrubbed from every string inside it."""
        if not self._value:
            return value
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, Mapping):
            return {self.scrub_json(k): self.scrub_json(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub_json(v) for v in value]
        return value

    def __repr__(self) -> str:
        return "ApiKey(***)" if self._value else "ApiKey(none)"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # pickling would copy the key to a Celery message or a cache
        raise TypeError("ApiKey cannot be pickled")


NO_KEY = ApiKey("")


def api_key_read(env_name: str | None, environ: Mapping[str, str] | None = None) -> ApiKey:
    """The key held in ``env_name`` (``NO_KEY`` when no variable is named, for local servers)."""
    if not env_name:
        return NO_KEY
    value = (environ if environ is not None else os.environ).get(env_name, "")
    if not value:
        raise MissingApiKeyError(f"environment variable {env_name} is not set")
    return ApiKey(value)
