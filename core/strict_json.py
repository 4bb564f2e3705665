"""Strict JSON reading for everything users send: no duplicate keys, no NaN, bounded nesting, and
no text PostgreSQL cannot store (NUL, lone surrogates). Pure Python, no Django: the API's parser
and the file importers use the same rules, so a body and a file line are refused alike."""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 64  # objects and arrays inside each other; far more than any real import needs


class StrictJSONError(ValueError):
    """Why a JSON text was refused; ``field`` names the top-level key involved when known."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise StrictJSONError(f"duplicate key {key!r}", field=key)
        result[key] = value
    return result


def _constant(value: str) -> object:
    raise StrictJSONError(f"{value} is not valid JSON")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise StrictJSONError(f"the number {text[:40]} is too large")
    return value


# One C-speed scan per string (an import checks every cell of every row); the loop below names it.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or ``None``."""
    if _UNSTORABLE.search(value) is None:
        return None
    if "\x00" in value:
        return "contains a NUL character, which cannot be stored"
    for character in value:
        if "\ud800" <= character <= "\udfff":
            return f"contains a lone surrogate (\\u{ord(character):04x}), which is not valid Unicode"
    return None


def _check(value: Any, depth: int, field: str | None) -> None:
    if depth > MAX_DEPTH:
        raise StrictJSONError(f"nested more than {MAX_DEPTH} levels deep", field=field)
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            raise StrictJSONError(problem, field=field)
    elif isinstance(value, dict):
        for key, inner in value.items():
            name = key if field is None else field
            problem = text_problem(key)
            if problem:
                raise StrictJSONError(f"a key {problem}", field=name)
            _check(inner, depth + 1, name)
    elif isinstance(value, list):
        for inner in value:
            _check(inner, depth + 1, field)


def value_check(value: Any) -> None:
    """Raise ``StrictJSONError`` when an already-decoded value breaks the rules above."""
    _check(value, 0, None)


def loads(text: str | bytes) -> Any:
    """``json.loads`` with the rules above; every refusal is a ``StrictJSONError`` (a ValueError)."""
    try:
        value = json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant, parse_float=_float)
    except StrictJSONError:
        raise
    except RecursionError as exc:
        raise StrictJSONError(f"nested more than {MAX_DEPTH} levels deep") from exc
    except json.JSONDecodeError as exc:
        raise StrictJSONError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise StrictJSONError(str(exc)) from exc
    if isinstance(text, str) and _plain(text):
        return value
    value_check(value)
    return value


def _plain(text: str) -> bool:
    """Whether the decoded value of ``text`` cannot break the rules: no ``\\u`` escape (the only way
    to write a NUL or a lone surrogate in valid JSON), none of them verbatim, and too few brackets
    to nest past the limit. Checked at C speed, so a file's ordinary lines skip the walk."""
    return (
        "\\u" not in text
        and _UNSTORABLE.search(text) is None
        and text.count("[") + text.count("{") <= MAX_DEPTH
    )
