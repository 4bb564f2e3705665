"""Keeping a model's identity out of what annotators read. No Django.

The server never sends an annotator the target, endpoint, pipeline or model name. A reply can
still name its own model ("As <model>, I ..."), so the text shown is passed through ``redact``
with the names the campaign's targets are known by.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[model]"
# Names shorter than this are too likely to be ordinary words ("o1" aside, which we keep).
_MIN_NAME_LENGTH = 2


def identity_names(values: Iterable[object]) -> list[str]:
    """The distinct, non-trivial names among ``values``, longest first (so a longer name that
    contains a shorter one is replaced whole)."""
    names: set[str] = set()
    for value in values:
        if not isinstance(value, str):
            continue
        name = value.strip()
        if len(name) >= _MIN_NAME_LENGTH:
            names.add(name)
            # Registry names are often "vendor/model": the bare model part identifies too.
            tail = name.rsplit("/", 1)[-1]
            if len(tail) >= 3:
                names.add(tail)
    return sorted(names, key=lambda n: (-len(n), n))


def redact(text: str, names: Iterable[str]) -> str:
    """``text`` with every case-insensitive occurrence of ``names`` replaced by ``[model]``."""
    names = [name for name in names if name]
    if not names or not text:
        return text
    pattern = re.compile("|".join(re.escape(name) for name in names), re.IGNORECASE)
    return pattern.sub(REDACTED, text)
