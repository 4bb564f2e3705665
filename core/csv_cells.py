"""CSV cells a spreadsheet will not run as formulas (OWASP "CSV injection"): pure Python, no Django.

Every CSV the platform writes (query, run and report exports) passes its text cells through
``neutralise``: a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a
leading apostrophe, which spreadsheets show as text. A cell starting with an apostrophe gets one
more, so ``restore`` (used by the query CSV import) gives back exactly the text exported. JSONL
exports keep the text as it is.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
# The first characters that earn a text cell its apostrophe (every start above is one character):
# a streamed export tests ``text[:1] in MARKED_STARTS`` inline, the rule of ``neutralise`` exactly.
MARKED_STARTS = frozenset((*FORMULA_STARTS, "'"))


def neutralise(value: object) -> object:
    """``value`` safe for a CSV cell; numbers and other non-text values pass unchanged."""
    if isinstance(value, str) and value[:1] in MARKED_STARTS:
        return "'" + value
    return value


def restore(value: str) -> str:
    """The text ``neutralise`` was given (for cells of a file the platform exported)."""
    if len(value) > 1 and value[0] == "'" and value[1] in (*FORMULA_STARTS, "'"):
        return value[1:]
    return value


# --- a batch of rows at a time ----------------------------------------------------------------------

_PLAIN = frozenset((int, bool, float))
_TEXT_OR_NONE = frozenset((str, type(None)))
# Written in place of the long cells, then replaced by them (see ``csv_rows``): two control
# characters no field of ours contains (checked: a batch where one does is written cell by cell).
_MARK = "\x1e\x1f"


def marked_column(values: Iterable[object]) -> list[object]:
    """``neutralise`` over a column. Only text is ever marked: a column without text is given
    back as it is; a column of text (and None) with few distinct values marks each value once
    (a model, a category, an outcome); any other tests its text inline (no call per cell)."""
    cells = values if isinstance(values, list) else list(values)
    kinds = set(map(type, cells))
    if str not in kinds and not any(issubclass(kind, str) for kind in kinds):
        return cells  # ``neutralise`` leaves every other value as it is
    if kinds <= _TEXT_OR_NONE:
        distinct = set(cells)
        if len(distinct) * 4 < len(cells):
            marks = {v: "'" + v if v is not None and v[:1] in MARKED_STARTS else v for v in distinct}
            return list(map(marks.__getitem__, cells))
    return [
        ("'" + v if v[:1] in MARKED_STARTS else v)
        if v.__class__ is str
        else v
        if v is None or v.__class__ in _PLAIN
        else neutralise(v)
        for v in cells
    ]


def csv_quoted(text: str) -> str:
    """``text`` as ``csv.writer`` (excel dialect, minimal quoting) writes one cell of it."""
    if '"' in text or "," in text or "\n" in text or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_rows(columns: Sequence[Sequence[object]], long_text: Collection[int] = ()) -> str:
    """The rows whose cells are ``columns`` (already marked), as ``csv.writer(...).writerows``
    writes them. The ``long_text`` columns (text or None: JSON, replies) are quoted by
    ``csv_quoted`` and joined in by ``str`` operations rather than by the writer, which walks
    every character of a cell in Python's C loop (three quarters of an export's CSV bytes are
    its JSON cells)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if long_text:
        writer.writerows(
            zip(
                *([_MARK] * len(col) if k in long_text else col for k, col in enumerate(columns)), strict=True
            )
        )
        parts = buffer.getvalue().split(_MARK)
        spliced = [columns[k] for k in sorted(long_text)]
        cells = [
            "" if v is None else csv_quoted(v if v.__class__ is str else str(v))
            for row in zip(*spliced, strict=True)
            for v in row
        ]
        if len(parts) == len(cells) + 1:
            out = [""] * (2 * len(cells) + 1)
            out[0::2] = parts
            out[1::2] = cells
            return "".join(out)
        buffer = io.StringIO()  # a cell held the mark itself: the writer writes every cell
        writer = csv.writer(buffer)
    writer.writerows(zip(*columns, strict=True))
    return buffer.getvalue()
