"""Template filters of the annotation pages."""

from django import template

register = template.Library()


@register.filter
def rating(value: object) -> str:
    """A stored rubric value as a person reads it: yes/no for binary fields, the value otherwise."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).replace("_", " ")


@register.filter
def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"
