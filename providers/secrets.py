"""API keys read from named environment variables, kept out of reprs, outcomes and logs."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

REDACTED_KEY = "[API KEY REDACTED]"

# A piece of the key this long, found anywhere, is taken for an echo of the key split in parts.
FRAGMENT_MIN = 8

# One character as a server may echo it: a JSON/Python escape, a URL escape or an HTML entity.
_ESCAPE = re.compile(
    r"\\u(?P<u>[0-9a-fA-F]{4})|\\x(?P<x>[0-9a-fA-F]{2})|%(?P<p>[0-9a-fA-F]{2})"
    r"|&#[xX](?P<hx>[0-9a-fA-F]{1,6});|&#(?P<d>[0-9]{1,7});"
)


def _decoded_units(text: str) -> tuple[str, list[tuple[int, int]]]:
    """``text`` with every escaped character decoded, and for each decoded character the span of
    ``text`` it came from (so what is found in the decoded text can be replaced in the original)."""
    chars: list[str] = []
    spans: list[tuple[int, int]] = []
    position = 0
    for match in _ESCAPE.finditer(text):
        for index in range(position, match.start()):
            chars.append(text[index])
            spans.append((index, index + 1))
        number = next(
            int(value, 10 if group == "d" else 16)
            for group, value in match.groupdict().items()
            if value is not None
        )
        chars.append(chr(number) if number <= 0x10FFFF else "\ufffd")
        spans.append((match.start(), match.end()))
        position = match.end()
    for index in range(position, len(text)):
        chars.append(text[index])
        spans.append((index, index + 1))
    return "".join(chars), spans


def _base64_forms(key: str) -> list[str]:
    """The base64 text of the key at each of the three byte alignments it can have inside a longer
    encoded value (``Basic`` credentials, an echoed header), in the standard and URL-safe alphabets:
    only the characters that depend on the key alone."""
    raw = key.encode()
    forms = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        start = -(-8 * offset // 6)
        end = (8 * (offset + len(raw))) // 6
        middle = encoded[start:end]
        if len(middle) >= FRAGMENT_MIN:
            forms += [middle, middle.replace("+", "-").replace("/", "_")]
    return forms


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
        """``text`` with every echo of the key replaced (servers echo keys in 401 bodies): the key as
        is, with any of its characters escaped (``\\u0073``, ``%73``, ``&#115;``), base64-encoded, or
        split in pieces of at least ``FRAGMENT_MIN`` characters (or the whole key if shorter)."""
        key = self._value
        if not key or not text:
            return text
        for form in _base64_forms(key):
            if form in text:
                text = text.replace(form, REDACTED_KEY)
        size = min(len(key), FRAGMENT_MIN)
        grams = {key[i : i + size] for i in range(len(key) - size + 1)}
        decoded, spans = _decoded_units(text) if _ESCAPE.search(text) else (text, None)
        if not any(gram in decoded for gram in grams):
            return text
        covered = [False] * len(decoded)
        for start in range(len(decoded) - size + 1):
            if decoded[start : start + size] in grams:
                for index in range(start, start + size):
                    covered[index] = True
        pieces: list[str] = []
        index = 0
        while index < len(decoded):
            if not covered[index]:
                end = index
                while end < len(decoded) and not covered[end]:
                    end += 1
                pieces.append(text[spans[index][0] : spans[end - 1][1]] if spans else decoded[index:end])
            else:
                end = index
                while end < len(decoded) and covered[end]:
                    end += 1
                pieces.append(REDACTED_KEY)
            index = end
        return "".join(pieces)

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

    def scrub_outcome_fields(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Every text a provider's reply put into a ``CallOutcome``, scrubbed after decoding: the
        reply text, model, finish reason, error, error body and the decoded raw reply."""
        return {name: self.scrub_json(value) for name, value in fields.items()}

    def __repr__(self) -> str:
        return "ApiKey(***)" if self._value else "ApiKey(none)"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # pickling would copy the key to a Celery message or a cache
        raise TypeError("ApiKey cannot be pickled")


NO_KEY = ApiKey("")

KEY_ENV_PREFIX = "MEDHARM_KEY_"
# Never a key variable, whatever an operator lists: the web framework's own settings.
_NEVER_PREFIXES = ("DJANGO_",)


class ApiKeyNotAllowedError(MissingApiKeyError):
    """The endpoint names a variable that may not hold a model key (the platform's own settings, or
    a name outside the operator's allow-list): refused before it is read, naming the variable only."""


@dataclass(frozen=True)
class KeyEnvPolicy:
    """Which environment variables may hold a model API key: names starting with ``prefix``, plus
    ``allowed`` names an operator listed, never ``forbidden`` ones (the platform's own settings)."""

    prefix: str = KEY_ENV_PREFIX
    allowed: Collection[str] = frozenset()
    forbidden: Collection[str] = frozenset()

    def problem(self, name: str) -> str | None:
        if name in self.forbidden or name.startswith(_NEVER_PREFIXES):
            return f"{name} is a setting of the platform itself and can never hold a model API key"
        if name.startswith(self.prefix) and len(name) > len(self.prefix):
            return None
        if name in self.allowed:
            return None
        return (
            f"{name} is not an allowed API key variable: use a name starting with {self.prefix} "
            "or ask the operator to list it in MEDHARM_MODEL_KEY_ENV_NAMES"
        )


DEFAULT_KEY_POLICY = KeyEnvPolicy()


def api_key_read(
    env_name: str | None,
    environ: Mapping[str, str] | None = None,
    *,
    policy: KeyEnvPolicy = DEFAULT_KEY_POLICY,
) -> ApiKey:
    """The key held in ``env_name`` (``NO_KEY`` when no variable is named, for local servers).
    A name the policy does not allow is refused before the environment is read."""
    if not env_name:
        return NO_KEY
    problem = policy.problem(env_name)
    if problem:
        raise ApiKeyNotAllowedError(problem)
    value = (environ if environ is not None else os.environ).get(env_name, "")
    if not value:
        raise MissingApiKeyError(f"environment variable {env_name} is not set")
    return ApiKey(value)
