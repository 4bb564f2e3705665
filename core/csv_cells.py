"""CSV cells a spreadsheet will not run as formulas (OWASP "CSV injection"): pure Python, no Django.

Every CSV the platform writes (query, run and report exports) passes its text cells through
``neutralise``: a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a
leading apostrophe, which spreadsheets show as text. A cell starting with an apostrophe gets one
more, so ``restore`` (used by the query CSV import) gives back exactly the text exported. JSONL
exports keep the text as it is.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def neutralise(value: object) -> object:
    """``value`` safe for a CSV cell; numbers and other non-text values pass unchanged."""
    if isinstance(value, str) and value.startswith((*FORMULA_STARTS, "'")):
        return "'" + value
    return value


def restore(value: str) -> str:
    """The text ``neutralise`` was given (for cells of a file the platform exported)."""
    if len(value) > 1 and value[0] == "'" and value[1] in (*FORMULA_STARTS, "'"):
        return value[1:]
    return value
