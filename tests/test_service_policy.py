"""Every write service checks its actor against the policy, whoever calls it: a table of service x
actor. A refused actor gets ``PermissionDenied`` and nothing is written (no audit event, no row);
an allowed one gets the service's work done."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied

from accounts.models import User
from accounts.roles import Role
from accounts.services import role_assign, role_remove, user_invite
from annotations.models import CampaignStatus, Flag
from annotations.services.campaigns import campaign_close, campaign_create, campaign_open, campaign_update
from annotations.services.labelling import flag_resolve, item_flag, item_next
from annotations.services.rubrics import guideline_publish, rubric_create
from audit.models import AuditEvent
from core.actors import SYSTEM
from evaluations.models import EndpointFamily
from evaluations.services import endpoint_create, endpoint_update, pipeline_create
from querybank.importers import CategorySpec, TaxonomySpec
from querybank.services import (
    category_delete,
    category_update,
    queries_import,
    taxonomy_create,
    taxonomy_import,
)
from tests.annotations.factories import EndpointFactory, guideline, response_campaign, response_rubric
from tests.factories import CategoryFactory, UserFactory

pytestmark = pytest.mark.django_db

ACTORS = ("none", "system", "clinician", "adjudicator", "committee", "researcher", "maintainer", "inactive")
MAINTAINERS = {"maintainer"}
# Services whose writes need no person behind them (the demo seeder, sign-up's role, operator commands).
SYSTEM_ALLOWED = {
    "queries_import",
    "taxonomy_import",
    "role_assign",
    "role_remove",
    "endpoint_create",
    "endpoint_update",
    "pipeline_create",
}


def make_actor(kind: str) -> Any:
    if kind == "none":
        return None
    if kind == "system":
        return SYSTEM
    if kind == "inactive":
        return UserFactory(role=Role.MAINTAINER, is_active=False)
    return UserFactory(
        role={
            "clinician": Role.CLINICIAN,
            "adjudicator": Role.ADJUDICATOR,
            "committee": Role.DATA_COMMITTEE,
            "researcher": Role.RESEARCHER,
            "maintainer": Role.MAINTAINER,
        }[kind]
    )


def _campaign_world() -> Any:
    return response_campaign(queries=1, models=2, overlap=2, annotators=2, open_it=False)


def _flag() -> Flag:
    setup = response_campaign(queries=1, models=1, overlap=1, annotators=1)
    item = item_next(campaign=setup.campaign, annotator=setup.annotators[0]).item
    return item_flag(item=item, annotator=setup.annotators[0], reason="other")


RUBRIC_FIELDS = [
    {
        "name": "verdict",
        "label": "Verdict",
        "kind": "binary",
        "primary": True,
        "options": [{"value": False, "label": "No"}, {"value": True, "label": "Yes"}],
    }
]

# service name -> (prepare: () -> context, call: (actor, context) -> result, check: (context) -> written?)
SERVICES: dict[str, tuple[Callable[[], Any], Callable[[Any, Any], Any]]] = {
    "queries_import": (
        lambda: None,
        lambda actor, _: queries_import(
            files=[
                (
                    "q.jsonl",
                    json.dumps(
                        {"external_id": "p-1", "text": "A synthetic question", "category": "toxicology"}
                    ).encode(),
                )
            ],
            file_format="jsonl",
            actor=actor,
        ),
    ),
    "taxonomy_create": (
        lambda: None,
        lambda actor, _: taxonomy_create(actor=actor, slug="policy-tx", name="Policy taxonomy"),
    ),
    "taxonomy_import": (
        lambda: None,
        lambda actor, _: taxonomy_import(
            actor=actor,
            spec=TaxonomySpec(
                file="t.json",
                slug="policy-tx",
                name="Policy taxonomy",
                description="",
                categories=(CategorySpec(slug="policy-c", name="Policy category"),),
            ),
        ),
    ),
    "category_update": (
        lambda: CategoryFactory(),
        lambda actor, category: category_update(actor=actor, category=category, name="Renamed", retired=True),
    ),
    "category_delete": (
        lambda: CategoryFactory(),
        lambda actor, category: category_delete(actor=actor, category=category),
    ),
    "role_assign": (
        lambda: UserFactory(),
        lambda actor, user: role_assign(user=user, role=Role.CLINICIAN, actor=actor),
    ),
    "role_remove": (
        lambda: UserFactory(role=Role.CLINICIAN),
        lambda actor, user: role_remove(user=user, role=Role.CLINICIAN, actor=actor),
    ),
    "user_invite": (
        lambda: None,
        lambda actor, _: user_invite(
            email="invitee@example.org", role=Role.CLINICIAN, invited_by=actor, site_url="http://testserver"
        ),
    ),
    "campaign_create": (
        lambda: _campaign_world(),
        lambda actor, setup: campaign_create(
            actor=actor,
            name="Another",
            target="response",
            rubric=response_rubric(),
            guideline=guideline(),
            annotators=setup.annotators,
            runs=[setup.run.pk],
        ),
    ),
    "campaign_open": (
        lambda: _campaign_world(),
        lambda actor, s: campaign_open(campaign=s.campaign, actor=actor),
    ),
    "campaign_close": (
        lambda: response_campaign(queries=1, models=1, overlap=1, annotators=1),
        lambda actor, s: campaign_close(campaign=s.campaign, actor=actor),
    ),
    "campaign_update": (
        lambda: _campaign_world(),
        lambda actor, s: campaign_update(campaign=s.campaign, actor=actor, name="Renamed"),
    ),
    "flag_resolve": (lambda: _flag(), lambda actor, flag: flag_resolve(flag=flag, actor=actor)),
    "rubric_create": (
        lambda: None,
        lambda actor, _: rubric_create(
            actor=actor, slug="policy-test", target="response", title="Policy test", fields=RUBRIC_FIELDS
        ),
    ),
    "guideline_publish": (
        lambda: None,
        lambda actor, _: guideline_publish(
            actor=actor, slug="policy-test", title="Policy", body="Be careful."
        ),
    ),
    "endpoint_create": (
        lambda: None,
        lambda actor, _: endpoint_create(
            actor=actor, slug="policy-ep", name="Policy EP", base_url="http://127.0.0.1:9/v1", model_name="m"
        ),
    ),
    "endpoint_update": (
        lambda: EndpointFactory(),
        lambda actor, endpoint: endpoint_update(actor=actor, endpoint=endpoint, name="Renamed endpoint"),
    ),
    "pipeline_create": (
        lambda: EndpointFactory(),
        lambda actor, endpoint: pipeline_create(
            actor=actor,
            slug="policy-pl",
            name="Policy PL",
            model=endpoint,
            input_guard=EndpointFactory(family=EndpointFamily.GUARDRAIL),
        ),
    ),
}

CASES = [(service, actor) for service in SERVICES for actor in ACTORS]


@pytest.mark.parametrize(("service", "actor_kind"), CASES, ids=[f"{s}-{a}" for s, a in CASES])
def test_service_checks_its_actor(service: str, actor_kind: str) -> None:
    prepare, call = SERVICES[service]
    context = prepare()
    actor = make_actor(actor_kind)
    events_before = AuditEvent.objects.count()
    users_before = User.objects.count()
    if actor_kind in MAINTAINERS or (actor_kind == "system" and service in SYSTEM_ALLOWED):
        result = call(actor, context)
        assert result is not False  # the service ran to its end
        assert AuditEvent.objects.count() > events_before
    else:
        with pytest.raises(PermissionDenied):
            call(actor, context)
        assert (AuditEvent.objects.count(), User.objects.count()) == (events_before, users_before)


def test_refused_campaign_changes_leave_it_as_it_was() -> None:
    setup = _campaign_world()
    clinician = make_actor("clinician")
    with pytest.raises(PermissionDenied):
        campaign_open(campaign=setup.campaign, actor=clinician)
    with pytest.raises(PermissionDenied):
        campaign_update(campaign=setup.campaign, actor=clinician, name="Hijacked")
    setup.campaign.refresh_from_db()
    assert (setup.campaign.status, setup.campaign.name) == (CampaignStatus.DRAFT, "Response campaign")


def test_campaign_visibility_predicate_and_selector_agree() -> None:
    """``can_view_campaign`` (the detail check) and ``campaign_list_for_user`` (the list) give the same
    answer for every role and every campaign state, drafts included."""
    from accounts.policy import can_view_campaign
    from annotations.selectors import campaign_list_for_user

    pool = [UserFactory(role=Role.CLINICIAN), UserFactory(role=Role.CLINICIAN)]
    both = UserFactory(role=Role.ADJUDICATOR)
    both.groups.add(*UserFactory(role=Role.CLINICIAN).groups.all())
    draft = response_campaign(queries=1, models=1, annotators=[*pool, both], open_it=False).campaign
    opened = response_campaign(queries=1, models=1, annotators=pool).campaign
    closed = response_campaign(queries=1, models=1, overlap=1, annotators=pool[:1]).campaign
    closed = campaign_close(campaign=closed, actor=closed.created_by)
    users = {
        "maintainer": UserFactory(role=Role.MAINTAINER),
        "adjudicator": UserFactory(role=Role.ADJUDICATOR),
        "adjudicator in a pool": both,
        "clinician in the pools": pool[0],
        "clinician outside": UserFactory(role=Role.CLINICIAN),
        "researcher": UserFactory(role=Role.RESEARCHER),
        "inactive maintainer": UserFactory(role=Role.MAINTAINER, is_active=False),
    }
    table = {
        (name, campaign.status): (
            bool(can_view_campaign(user, campaign)),
            campaign_list_for_user(user=user).filter(pk=campaign.pk).exists(),
        )
        for name, user in users.items()
        for campaign in (draft, opened, closed)
    }
    disagreements = {case: answers for case, answers in table.items() if answers[0] != answers[1]}
    assert disagreements == {}
    # and the rule itself: drafts only for maintainers and the adjudicator who is in the draft's pool
    assert {case for case, (allowed, _) in table.items() if allowed and case[1] == "draft"} == {
        ("maintainer", "draft"),
        ("adjudicator in a pool", "draft"),
    }
