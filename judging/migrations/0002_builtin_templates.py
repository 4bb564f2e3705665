"""Seed version 1 of the built-in judge templates (``judging.prompts.BUILTIN_TEMPLATES``)."""

from django.db import migrations

from judging.prompts import BUILTIN_TEMPLATES, content_hash


def seed(apps, schema_editor):
    JudgeTemplate = apps.get_model("judging", "JudgeTemplate")
    for definition in BUILTIN_TEMPLATES:
        if JudgeTemplate.objects.filter(slug=definition["slug"], version=1).exists():
            continue
        JudgeTemplate.objects.create(
            slug=definition["slug"],
            version=1,
            title=definition["title"],
            description=definition.get("description", ""),
            system_prompt="",
            prompt=definition["prompt"],
            parser=definition["parser"],
            fields=list(definition["fields"]),
            content_hash=content_hash(
                prompt=definition["prompt"],
                system_prompt="",
                parser=definition["parser"],
                fields=definition["fields"],
            ),
            builtin=True,
        )


class Migration(migrations.Migration):
    dependencies = [("judging", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
