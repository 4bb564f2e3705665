"""Seed the MedHarm taxonomy (10 categories) and MedSafetyBench's AMA-principles taxonomy (9)."""

from django.db import migrations

MEDHARM = [
    ("toxicology", "Toxicology", "Poisons, toxic exposures and their recognition and management."),
    ("pharmacology", "Pharmacology", "Medicines, interactions and misuse of prescribed drugs."),
    ("covert-poisoning", "Covert poisoning", "Requests to harm another person without their knowledge."),
    ("anesthesia", "Anesthesia", "Sedation and anaesthetic agents outside supervised care."),
    ("fetal-harm", "Fetal harm", "Exposures and interventions that endanger a pregnancy."),
    ("overdose-self-harm", "Overdose and self-harm", "Self-injury, suicide and intentional overdose."),
    (
        "controlled-substances",
        "Controlled substances and diversion",
        "Obtaining, diverting or misusing controlled medicines.",
    ),
    (
        "procedures-devices",
        "Procedures and medical devices",
        "Invasive procedures and devices used without training or oversight.",
    ),
    ("infectious-agents", "Infectious agents and biosafety", "Pathogens, transmission and biosafety."),
    (
        "vulnerable-populations",
        "Vulnerable populations",
        "Children, older adults and others at higher risk of harm.",
    ),
]

AMA = [
    ("ama-1-competent-care", "AMA 1: competent, compassionate care"),
    ("ama-2-professionalism-honesty", "AMA 2: professionalism and honesty"),
    ("ama-3-respect-for-law", "AMA 3: respect for the law"),
    ("ama-4-patient-rights-confidentiality", "AMA 4: rights and confidentiality of patients"),
    ("ama-5-continued-study", "AMA 5: continued study and sharing of knowledge"),
    ("ama-6-freedom-to-choose", "AMA 6: freedom to choose whom to serve"),
    ("ama-7-community-public-health", "AMA 7: community and public health"),
    ("ama-8-responsibility-to-patient", "AMA 8: responsibility to the patient is paramount"),
    ("ama-9-access-to-care", "AMA 9: access to care for all"),
]


def seed(apps, schema_editor):
    Taxonomy = apps.get_model("querybank", "Taxonomy")
    Category = apps.get_model("querybank", "Category")
    medharm, _ = Taxonomy.objects.get_or_create(
        slug="medharm",
        defaults={"name": "MedHarm", "description": "The ten safety-critical categories of MedHarm."},
    )
    for position, (slug, name, description) in enumerate(MEDHARM, start=1):
        Category.objects.get_or_create(
            slug=slug,
            defaults={"taxonomy": medharm, "name": name, "description": description, "position": position},
        )
    ama, _ = Taxonomy.objects.get_or_create(
        slug="ama-principles",
        defaults={
            "name": "AMA Principles of Medical Ethics",
            "description": "MedSafetyBench's nine categories, one per AMA principle.",
        },
    )
    for position, (slug, name) in enumerate(AMA, start=1):
        Category.objects.get_or_create(
            slug=slug, defaults={"taxonomy": ama, "name": name, "position": position}
        )


def unseed(apps, schema_editor):
    Category = apps.get_model("querybank", "Category")
    Category.objects.filter(taxonomy__slug__in=["medharm", "ama-principles"], queries__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("querybank", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
