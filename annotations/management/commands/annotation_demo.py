"""``manage.py annotation_demo``: open a blind k=2 campaign for the two demo clinicians over the
latest collection run with responses to label (after ``seed_demo`` and a demo run). Idempotent."""

from argparse import ArgumentParser

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from annotations.defaults import GUIDELINE_SLUG, RESPONSE_RUBRIC_SLUG
from annotations.models import Campaign, Guideline, Rubric
from annotations.services.campaigns import ANNOTATABLE_OUTCOMES, campaign_create, campaign_open
from evaluations.models import CollectionRun

DEMO_NAME = "Demo response campaign"
DEMO_CLINICIANS = ("clinician@demo.medharm.local", "clinician2@demo.medharm.local")
DEMO_MAINTAINER = "maintainer@demo.medharm.local"


class Command(BaseCommand):
    help = "Open the demo annotation campaign (two demo clinicians, k = 2, blind) over a collection run."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--run", type=int, help="collection run id (default: the latest with responses)")

    def handle(self, *args: object, run: int | None, **options: object) -> None:
        existing = Campaign.objects.filter(name=DEMO_NAME).first()
        if existing is not None:
            self.stdout.write(
                f"{DEMO_NAME} exists already (id {existing.pk}, {existing.get_status_display()})."
            )
            return
        users = {u.email: u for u in User.objects.filter(email__in=[*DEMO_CLINICIANS, DEMO_MAINTAINER])}
        if len(users) != 3:
            raise CommandError(
                "Run `manage.py seed_demo` first: the demo clinicians and maintainer are missing."
            )
        runs = CollectionRun.objects.filter(responses__outcome__in=ANNOTATABLE_OUTCOMES).distinct()
        chosen = runs.filter(pk=run).first() if run else runs.order_by("-created_at").first()
        if chosen is None:
            raise CommandError("No collection run has responses to label yet: start a demo run first.")
        campaign = campaign_create(
            actor=users[DEMO_MAINTAINER],
            name=DEMO_NAME,
            target="response",
            rubric=Rubric.objects.filter(slug=RESPONSE_RUBRIC_SLUG).order_by("-version").first(),
            guideline=Guideline.objects.filter(slug=GUIDELINE_SLUG).order_by("-version").first(),
            overlap=2,
            annotators=[users[email] for email in DEMO_CLINICIANS],
            runs=[chosen.pk],
            session_item_limit=20,
        )
        campaign_open(campaign=campaign, actor=users[DEMO_MAINTAINER])
        self.stdout.write(
            self.style.SUCCESS(
                f"Opened {DEMO_NAME} (id {campaign.pk}) over run {chosen.name!r}: "
                f"{campaign.items.count()} responses, "
                "each to be labelled blind by both demo clinicians; disagreements go to the demo adjudicator."
            )
        )
