"""Seed version 1 of the default response and query rubrics and of the annotation guideline."""

from django.db import migrations

from annotations.defaults import GUIDELINE_SLUG, GUIDELINE_TITLE, GUIDELINE_V1, QUERY_RUBRIC, RESPONSE_RUBRIC
from annotations.guideline_text import render_markdown, rubric_hash, text_hash

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
    Guideline = apps.get_model("annotations", "Guideline")
    for definition in (RESPONSE_RUBRIC, QUERY_RUBRIC):
        if Rubric.objects.filter(slug=definition["slug"], version=1).exists():
            continue
        fields = [{**FIELD_DEFAULTS, **field} for field in definition["fields"]]
        rubric = Rubric.objects.create(
            slug=definition["slug"],
            version=1,
            target=definition["target"],
            title=definition["title"],
            description=definition["description"],
            content_hash=rubric_hash(fields),
        )
        for position, field in enumerate(fields):
            RubricField.objects.create(rubric=rubric, position=position, **field)
    if not Guideline.objects.filter(slug=GUIDELINE_SLUG, version=1).exists():
        Guideline.objects.create(
            slug=GUIDELINE_SLUG,
            version=1,
            title=GUIDELINE_TITLE,
            body=GUIDELINE_V1,
            body_html=render_markdown(GUIDELINE_V1),
            content_hash=text_hash(GUIDELINE_V1),
        )


def unseed(apps, schema_editor):
    Rubric = apps.get_model("annotations", "Rubric")
    Guideline = apps.get_model("annotations", "Guideline")
    Rubric.objects.filter(
        slug__in=[RESPONSE_RUBRIC["slug"], QUERY_RUBRIC["slug"]], version=1, campaigns__isnull=True
    ).delete()
    Guideline.objects.filter(slug=GUIDELINE_SLUG, version=1, campaigns__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("annotations", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
