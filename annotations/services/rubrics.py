"""Publishing rubric and guideline versions. Each call makes a new row; nothing is ever edited."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from accounts.models import User
from accounts.policy import can_manage_campaigns, require
from annotations.guideline_text import render_markdown, rubric_hash, text_hash
from annotations.metric_map import map_problems
from annotations.models import Guideline, OptionsSource, QueryAttribute, Rubric, RubricField, RubricTarget
from annotations.rubric_schema import Kind, rubric_problems, spec_from_dict
from audit.actions import AuditAction
from audit.services import audit_record
from core.locks import advisory_lock

_FIELD_KEYS = (
    "name",
    "label",
    "kind",
    "help_text",
    "required",
    "primary",
    "options",
    "options_source",
    "query_attribute",
    "missing",
)


def normalise_field(data: Mapping[str, Any]) -> dict[str, Any]:
    """A field definition with every key present, as it is stored and hashed."""
    unknown = set(data) - set(_FIELD_KEYS)
    if unknown:
        raise ValidationError({"fields": f"Unknown field keys: {', '.join(sorted(unknown))}."})
    normalised = {
        "name": str(data.get("name", "")).strip(),
        "label": str(data.get("label") or data.get("name", "")).strip(),
        "kind": str(data.get("kind", "")),
        "help_text": str(data.get("help_text", "")),
        "required": bool(data.get("required", True)),
        "primary": bool(data.get("primary", False)),
        "options": list(data.get("options") or []),
        "options_source": str(data.get("options_source", "")),
        "query_attribute": str(data.get("query_attribute", "")),
    }
    # Only a field that declares a missing value carries the key, so the content hash of a rubric
    # without one is what it was before fields could declare it.
    if data.get("missing") is not None:
        normalised["missing"] = data["missing"]
    return normalised


def _check_fields(target: str, fields: list[dict[str, Any]]) -> None:
    problems: list[str] = []
    specs = []
    for field in fields:
        if field["kind"] not in Kind.__members__.values():
            problems.append(f"{field['name']}: unknown kind {field['kind']!r}")
            continue
        if field["options_source"] not in OptionsSource.values:
            problems.append(f"{field['name']}: unknown options source {field['options_source']!r}")
        if field["query_attribute"] not in QueryAttribute.values:
            problems.append(f"{field['name']}: unknown query attribute {field['query_attribute']!r}")
        if field["query_attribute"] and target != RubricTarget.QUERY:
            problems.append(f"{field['name']}: only query rubrics set query attributes")
        try:
            spec = spec_from_dict(field)
        except (KeyError, ValueError) as exc:
            problems.append(f"{field['name']}: {exc}")
            continue
        if field["options_source"] == OptionsSource.CATEGORIES:
            if spec.kind != Kind.NOMINAL or spec.options:
                problems.append(f"{field['name']}: a categories field is nominal and stores no options")
            # Checked as a nominal field with placeholder options: its real ones come from the bank.
            spec = spec_from_dict({**field, "options": [{"value": "a"}, {"value": "b"}]})
        specs.append(spec)
    problems.extend(rubric_problems(specs))
    if problems:
        raise ValidationError({"fields": problems})


@transaction.atomic
def rubric_create(
    *,
    actor: User,
    slug: str,
    target: str,
    title: str,
    fields: Sequence[Mapping[str, Any]],
    description: str = "",
    metric_map: Mapping[str, Any] | None = None,
) -> Rubric:
    """Publish the next version of rubric ``slug`` with ``fields`` (dicts as in ``defaults.py``)
    and ``metric_map`` (``annotations.metric_map``; none: the default map of our response rubric)."""
    require(can_manage_campaigns, actor, message="Only maintainers publish rubrics.")
    if target not in RubricTarget.values:
        raise ValidationError({"target": f"Unknown target {target!r}."})
    normalised = [normalise_field(f) for f in fields]
    _check_fields(target, normalised)
    if metric_map:
        if not isinstance(metric_map, Mapping):
            raise ValidationError({"metric_map": "An object: score input -> field and values."})
        problems = map_problems(metric_map, [spec_from_dict(f) for f in normalised])
        if problems:
            raise ValidationError({"metric_map": problems})
    # Serialise publishers of the same slug: the version number is max + 1.
    advisory_lock(f"annotations:rubric:{slug}")
    existing = list(Rubric.objects.filter(slug=slug).values_list("target", flat=True)[:1])
    if existing and existing[0] != target:
        raise ValidationError(
            {"target": f"Rubric {slug!r} rates {existing[0]}s; a new version cannot change that."}
        )
    version = (Rubric.objects.filter(slug=slug).aggregate(v=Max("version"))["v"] or 0) + 1
    rubric = Rubric(
        slug=slug,
        version=version,
        target=target,
        title=title,
        description=description,
        content_hash=rubric_hash(normalised),
        metric_map=dict(metric_map or {}),
        created_by=actor,
    )
    rubric.full_clean()
    rubric.save()
    RubricField.objects.bulk_create(
        RubricField(
            rubric=rubric,
            position=position,
            **{k: v for k, v in field.items() if k != "missing"},
            missing={"value": field["missing"]} if "missing" in field else {},
        )
        for position, field in enumerate(normalised)
    )
    audit_record(
        actor=actor,
        action=AuditAction.RUBRIC_CREATE,
        target=rubric,
        details={
            "slug": slug,
            "version": version,
            "content_hash": rubric.content_hash,
            "metric_map": rubric.metric_map,
        },
    )
    return rubric


@transaction.atomic
def guideline_publish(*, actor: User, slug: str, title: str, body: str) -> Guideline:
    """Publish the next version of guideline ``slug``; the HTML is rendered and sanitised once."""
    require(can_manage_campaigns, actor, message="Only maintainers publish guidelines.")
    body = body.replace("\r\n", "\n")
    if not body.strip():
        raise ValidationError({"body": "A guideline needs a text."})
    advisory_lock(f"annotations:guideline:{slug}")
    version = (Guideline.objects.filter(slug=slug).aggregate(v=Max("version"))["v"] or 0) + 1
    guideline = Guideline(
        slug=slug,
        version=version,
        title=title,
        body=body,
        body_html=render_markdown(body),
        content_hash=text_hash(body),
        created_by=actor,
    )
    guideline.full_clean()
    guideline.save()
    audit_record(
        actor=actor,
        action=AuditAction.GUIDELINE_PUBLISH,
        target=guideline,
        details={"slug": slug, "version": version, "content_hash": guideline.content_hash},
    )
    return guideline
