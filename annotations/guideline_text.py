"""Guideline Markdown to safe HTML, and the content hashes that versions are stamped with. No Django.

Guidelines are written by staff, but the HTML is still sanitised: a pasted snippet must not be
able to run script in a clinician's browser (and the CSP would refuse inline script anyway).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

import markdown
import nh3

ALLOWED_TAGS = frozenset(
    {
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "code",
        "dd",
        "del",
        "dl",
        "dt",
        "em",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "kbd",
        "li",
        "ol",
        "p",
        "pre",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "th",
        "thead",
        "tr",
        "ul",
    }
)
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "td": {"align"}, "th": {"align"}}


def render_markdown(body: str) -> str:
    """Markdown (with tables and definition lists) as sanitised HTML: no script, style, event
    handler, iframe or javascript: link survives, and links get rel="noopener noreferrer"."""
    html = markdown.markdown(body, extensions=["extra", "sane_lists"], output_format="html")
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )


def text_hash(body: str) -> str:
    """sha256 of the text as stored (line endings normalised to \\n)."""
    return hashlib.sha256(body.replace("\r\n", "\n").encode()).hexdigest()


def rubric_hash(fields: Iterable[Mapping[str, object]]) -> str:
    """sha256 of a rubric's field definitions in canonical JSON: equal hashes, equal rubrics."""
    keys = ("name", "label", "kind", "required", "primary", "options", "options_source", "query_attribute")
    canonical = [{key: field.get(key) for key in keys} for field in fields]
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
