"""CSV cells a spreadsheet will not run: text starting with = + - @ or a control character is
prefixed with an apostrophe (OWASP's advice against CSV injection). Pure: no Django import."""

from __future__ import annotations

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


def neutralise(value: object) -> object:
    if isinstance(value, str) and value.startswith(_TRIGGERS):
        return "'" + value
    return value
