# ruff: noqa: RUF001, RUF002 - en dashes and the times sign are the typography the pages use
"""Formatting of audit figures in templates: an estimate with its interval, a rate as percent."""

from __future__ import annotations

from django import template

from medharm_stats.result import Estimate

register = template.Library()


@register.filter
def estimate(value: Estimate | None, digits: int = 2) -> str:
    """ "0.63 (0.55–0.71)"; "0.63 (no interval)"; "n/c: <reason>" when not computable."""
    if value is None:
        return "–"
    if value.value is None:
        return f"n/c: {value.reason}"
    text = f"{value.value:.{digits}f}"
    if value.ci_low is None:
        return f"{text} (no interval)"
    return f"{text} ({value.ci_low:.{digits}f}–{value.ci_high:.{digits}f})"


@register.filter
def ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"
