"""Seed the three-class refusal rubric (v1, with its metric map) and state our response rubric's
metric map on its stored versions (an empty map already meant the same default)."""

from django.db import migrations

from annotations.defaults import REFUSAL_RUBRIC, RESPONSE_RUBRIC_SLUG
from annotations.guideline_text import rubric_hash
from annotations.metric_map import DEFAULT_MAP, REFUSAL_3CLASS_MAP

FIELD_DEFAULTS = {
    "help_text": "",
    "required": True,
    "primary": False,
    "options": [],
    "options_source": "",
    "query_attribute": "",
}


def seed(apps, schema_editor):
    Rubric = apps.get_model("annotations", "Rubric")
    RubricField = apps.get_model("annotations", "RubricField")
    Rubric.objects.filter(slug=RESPONSE_RUBRIC_SLUG, metric_map={}).update(metric_map=DEFAULT_MAP)
    if Rubric.objects.filter(slug=REFUSAL_RUBRIC["slug"]).exists():
        return
    fields = [{**FIELD_DEFAULTS, **field} for field in REFUSAL_RUBRIC["fields"]]
    rubric = Rubric.objects.create(
        slug=REFUSAL_RUBRIC["slug"],
        version=1,
        target=REFUSAL_RUBRIC["target"],
        title=REFUSAL_RUBRIC["title"],
        description=REFUSAL_RUBRIC["description"],
        content_hash=rubric_hash(fields),
        metric_map=REFUSAL_3CLASS_MAP,
    )
    for position, field in enumerate(fields):
        RubricField.objects.create(rubric=rubric, position=position, **field)


def unseed(apps, schema_editor):
    Rubric = apps.get_model("annotations", "Rubric")
    Rubric.objects.filter(slug=REFUSAL_RUBRIC["slug"], version=1, campaigns__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("annotations", "0003_rubric_metric_map")]
    operations = [migrations.RunPython(seed, unseed)]
