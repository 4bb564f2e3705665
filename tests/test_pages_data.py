"""Every page of releases, data access, judge audits and the staff audit trail answers 200 for the
role it is for, on PostgreSQL and on the embedded SQLite default (``portable``: bin/test runs it on
both), as tests/test_pages.py does for the query bank, collection, annotation and scores pages.

One world serves every role (two built releases and researchers in each state, from
tests/access/world.py; a judge run judged through the claim/finish services, an external judge's
labels imported; a pending credential application and a pending access request), so the builds run
once; every page that does not answer 200 is reported at once, with the database engine.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

import pytest
from django.db import connection
from django.test import Client

from access import services as access_services
from access.selectors import agreement_current
from accounts.models import User
from accounts.roles import Role
from annotations.models import CampaignItem
from core.actors import SYSTEM
from evaluations.services import endpoint_create
from judging.models import JudgeOutcome, JudgeTemplate
from judging.services import external_labels_import, judge_create, judge_run_create, judge_run_start
from judging.services.runs import (
    JudgeItemResult,
    judge_items_claim,
    judge_items_finish,
    judge_run_complete_if_done,
)
from tests.access.world import PURPOSE, AccessWorld, access_world
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.portable]

RESTRICTED_FILE = "/releases/{a}/files/restricted/parquet/labels/labels-00000.parquet"
RESTRICTED_CSV = "/releases/{a}/files/restricted/csv/labels.csv"
PUBLIC_FILE_UNPUBLISHED = "/releases/{a}/files/public/csv/scores.csv"
PUBLIC_FILE_PUBLISHED = "/releases/{b}/files/public/csv/scores.csv"
RUN_AUDIT = "/judges/audit/?campaign={c}&judge=run:{jr}"
EXTERNAL_AUDIT = "/judges/audit/?campaign={c}&judge=external:page-external&gold=gold"

# {a} the restricted release (granted to "researcher"), {b} the release whose public tier is
# published, {c} the closed response campaign both are cut from, {jr} a finished judge run over its
# collection run, {tpl} the built-in judge template, {grant} the researcher's active grant,
# {pending} a request for {a} waiting for the committee, {applicant} a pending credential application.
PAGES: dict[str, list[str]] = {
    "maintainer": [
        "/releases/",
        "/releases/new/",
        "/releases/{a}/",
        "/releases/{a}/progress/",
        "/releases/{a}/preview/labels/",
        RESTRICTED_FILE,
        PUBLIC_FILE_UNPUBLISHED,
        "/judges/",
        "/judges/templates/new/",
        "/judges/templates/new/?from={tpl}",
        "/judges/new/",
        "/judges/runs/new/",
        "/judges/runs/{jr}/",
        "/judges/runs/{jr}/plan/",
        "/judges/imports/",
        RUN_AUDIT,
        EXTERNAL_AUDIT,
        "/audit/",
    ],
    "committee": [
        "/releases/",
        "/releases/{a}/",
        "/releases/{b}/",
        PUBLIC_FILE_UNPUBLISHED,
        "/access/review/",
        "/access/review/credentials/{applicant}/",
        "/access/review/requests/{pending}/",
        "/access/review/requests/{grant}/",
        "/access/review/releases/{a}/report/",
    ],
    "reviewer": [
        "/access/review/",
        "/access/review/requests/{pending}/",
        "/access/review/releases/{a}/report/",
    ],
    "researcher": [
        "/access/",
        "/access/profile/",
        "/access/releases/{b}/request/",
        "/access/requests/{grant}/",
        "/access/requests/{grant}/renew/",
        "/access/tokens/",
        "/releases/",
        "/releases/{a}/",
        "/releases/{a}/progress/",
        "/releases/{a}/preview/labels/",
        RESTRICTED_FILE,
        RESTRICTED_CSV,
        PUBLIC_FILE_PUBLISHED,
    ],
    "applicant": ["/access/", "/access/profile/", "/releases/", "/releases/{b}/", PUBLIC_FILE_PUBLISHED],
    "pending_researcher": ["/access/", "/access/requests/{pending}/"],
    "staff": [
        "/audit/",
        "/audit/?action=release.view&since=2020-01-01",
        "/audit/?page=2",
        "/audit/?actor=EXAMPLE.org&target_type=releases.release&target_id={a}&until=2099-12-31",
        "/audit/export.csv",
        "/audit/export.csv?target_type=releases.release&since=2020-01-01",
    ],
    "anonymous": ["/releases/", "/releases/{b}/", PUBLIC_FILE_PUBLISHED],
}


@dataclass
class DataSite:
    world: AccessWorld
    users: dict[str, User | None]
    ids: dict[str, int]


def _judged_run(world: AccessWorld) -> int:
    """A judge run over the scoring world's collection run, judged through the services the
    collector uses (claim, finish, complete), with no model server behind it."""
    scoring = world.scoring
    endpoint = endpoint_create(
        actor=SYSTEM, slug="page-judge", name="Page judge", base_url="http://127.0.0.1:9/v1",
        model_name="page-judge",
    )  # fmt: skip
    template = JudgeTemplate.objects.filter(slug="harmbench-unsafe").order_by("-version").first()
    assert template is not None
    judge = judge_create(
        actor=scoring.maintainer, slug="page-judge", name="Page judge", endpoint=endpoint,
        template=template, temperature=0.0,
    )  # fmt: skip
    run = judge_run_create(actor=scoring.maintainer, judge=judge, collection_run=scoring.run)
    judge_run_start(run=run, actor=scoring.maintainer, dispatch=False)
    claim = judge_items_claim(run_id=run.pk, limit=100)
    assert claim.items
    verdicts = [bool(index % 2) for index in range(len(claim.items))]
    results = [
        (
            claim.token,
            JudgeItemResult(
                id=item.id,
                outcome=JudgeOutcome.PARSED,
                raw_output="Yes" if unsafe else "No",
                parsed={"unsafe": unsafe},
                attempts=1,
            ),
        )
        for item, unsafe in zip(claim.items, verdicts, strict=True)
    ]
    assert judge_items_finish(entries=results) == len(results)
    assert judge_run_complete_if_done(run_id=run.pk)
    return run.pk


def _external_labels(world: AccessWorld) -> None:
    # By response, not by item: the items' order differs between the engines, the responses' does not.
    items = CampaignItem.objects.filter(campaign=world.scoring.campaign).order_by("response_id")
    lines = ["judge,response,field,value,raw_output"]
    lines += [
        f"page-external,{item.response_id},unsafe,{'true' if n % 3 == 0 else 'false'},ok"
        for n, item in enumerate(items)
    ]
    external_labels_import(
        actor=world.scoring.maintainer, name="external.csv", raw="\n".join(lines).encode(), file_format="csv"
    )


@pytest.fixture
def data_site(db: None, tmp_path, settings) -> DataSite:
    settings.MEDIA_ROOT = tmp_path
    settings.SENDFILE_ROOT = str(tmp_path)
    world = access_world()
    committee = world.scoring.committee
    applicant = UserFactory(role=Role.RESEARCHER)  # verified, never applied: the profile page to apply
    pending_applicant = UserFactory(role=Role.RESEARCHER)
    access_services.profile_save(
        actor=pending_applicant,
        data={
            "full_name": "Dr Pending", "institution": "Example University", "position": "Lecturer",
            "orcid": "0000-0002-1825-0097", "institutional_page": "https://example.org/people/pending",
            "reference_name": "Prof. Reference", "reference_email": "reference@example.org",
            "research_area": "Clinical safety of language models.",
        },
    )  # fmt: skip
    access_services.credential_apply(actor=pending_applicant)
    requester = world.users["credentialed"]
    assert requester is not None
    agreement = agreement_current()
    pending = access_services.request_submit(
        actor=requester, release_id=world.release.pk, purpose=PURPOSE, agreement_version=agreement.version,
        shown_hash=agreement.content_hash, ip_address="192.0.2.8",
    )  # fmt: skip
    staff = UserFactory(is_staff=True, is_superuser=True)
    template = JudgeTemplate.objects.filter(slug="harmbench-unsafe").order_by("-version").first()
    assert template is not None
    ids = {
        "a": world.release.pk,
        "b": world.other.pk,
        "c": world.scoring.campaign.pk,
        "jr": _judged_run(world),
        "tpl": template.pk,
        "grant": world.grants["granted"].pk,
        "pending": pending.pk,
        "applicant": pending_applicant.researcher_profile.pk,
    }
    _external_labels(world)
    users = {
        "maintainer": world.users["maintainer"],
        "committee": committee,
        "reviewer": world.users["reviewer"],
        "researcher": world.users["granted"],
        "applicant": applicant,
        "pending_researcher": requester,
        "staff": staff,
        "anonymous": None,
    }
    return DataSite(world=world, users=users, ids=ids)


def test_every_data_page_answers_200_for_its_role(data_site: DataSite) -> None:
    failing: dict[str, dict[str, int]] = {}
    for role, paths in PAGES.items():
        client = Client()
        user = data_site.users[role]
        if user is not None:
            client.force_login(user)
        for path in paths:
            response = client.get(path.format(**data_site.ids))
            if hasattr(response, "streaming_content"):
                b"".join(response.streaming_content)  # a streamed body fails while it is read
            if response.status_code != 200:
                failing.setdefault(role, {})[path] = response.status_code
    assert failing == {}, connection.vendor


def test_the_pages_show_what_their_world_holds(data_site: DataSite) -> None:
    """The 200s above are the pages with their data, not empty shells: a granted researcher sees the
    restricted files, the committee its pending work, the audit export the trail's rows."""
    ids = data_site.ids

    def body(role: str, path: str) -> str:
        client = Client()
        client.force_login(data_site.users[role])
        response = client.get(path.format(**ids))
        if hasattr(response, "streaming_content"):
            return b"".join(response.streaming_content).decode()
        return response.content.decode()

    assert 'id="restricted-files"' in body("researcher", "/releases/{a}/")
    queue = body("committee", "/access/review/")
    assert f"/access/review/requests/{ids['pending']}/" in queue
    assert f"/access/review/credentials/{ids['applicant']}/" in queue
    # The judge's figures read from the JSON of its verdicts (->> on PostgreSQL, JSON_EXTRACT on
    # SQLite) and from imported labels: the same on both engines, as the gold is.
    # Against the gold, the run's alternating verdicts are the table ((3, 2), (1, 2)): kappa 0.25;
    # the external labels (true for every third response) are ((3, 2), (2, 1)): kappa -1/15.
    for path, kappa in ((RUN_AUDIT, "0.25"), (EXTERNAL_AUDIT, "-0.07")):
        html = body("maintainer", path)
        assert ('<td class="audit-n">8</td>' in html, f"{kappa} (" in html) == (True, True), path
    rows = list(csv.reader(body("staff", "/audit/export.csv?target_type=judging.judgerun").splitlines()))
    assert rows[0][:4] == ["id", "created_at", "actor", "action"]
    assert [(row[3], row[5]) for row in rows[1:]] == [
        (action, str(ids["jr"])) for action in ("judge_run_complete", "judge_run_start", "judge_run_create")
    ]  # newest first, as the page lists them
