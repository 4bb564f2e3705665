"""ORCID iDs: format and the ISO 7064 MOD 11-2 check character. Pure: no Django import."""

from __future__ import annotations

import re

_FORMAT = re.compile(r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$")


def check_character(base_digits: str) -> str:
    """The MOD 11-2 check character of the first 15 digits (ORCID's published algorithm)."""
    total = 0
    for digit in base_digits:
        total = (total + int(digit)) * 2
    result = (12 - total % 11) % 11
    return "X" if result == 10 else str(result)


def normalise(value: str) -> str:
    """Accepts a bare iD or an https://orcid.org/ URL; returns the bare upper-case iD."""
    value = value.strip()
    for prefix in ("https://orcid.org/", "http://orcid.org/", "orcid.org/"):
        if value.lower().startswith(prefix):
            value = value[len(prefix) :]
    return value.upper()


def problem(value: str) -> str | None:
    """Why ``value`` is not a valid ORCID iD, or None when it is."""
    value = normalise(value)
    if not _FORMAT.match(value):
        return "An ORCID iD has the form 0000-0002-1825-0097 (16 characters in four groups)."
    digits = value.replace("-", "")
    if check_character(digits[:15]) != digits[15]:
        return "This ORCID iD's check digit is wrong: please copy it again from your ORCID record."
    return None
