"""The annotation API end to end: a maintainer sets up, two clinicians label, an adjudicator decides."""

import pytest
from django.test import Client

from accounts.roles import Role
from annotations.models import Campaign, Label
from audit.models import AuditEvent
from tests.annotations.factories import (
    SAFE_VALUES,
    UNSAFE_VALUES,
    guideline,
    response_campaign,
    response_rubric,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_whole_loop_through_the_api() -> None:
    setup = response_campaign(queries=1, models=1, overlap=2, annotators=2, open_it=False)
    maintainer = _client(setup.maintainer)
    created = maintainer.post(
        "/api/v1/annotation-campaigns/",
        {
            "name": "API campaign",
            "target": "response",
            "rubric": response_rubric().pk,
            "guideline": guideline().pk,
            "overlap": 2,
            "annotators": [a.pk for a in setup.annotators],
            "runs": [setup.run.pk],
            "categories": ["toxicology", "pharmacology"],
            "session_item_limit": 10,
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    campaign = created.json()
    assert (campaign["status"], campaign["overlap"], campaign["rubric"]["version"]) == ("draft", 2, 1)
    opened = maintainer.post(f"/api/v1/annotation-campaigns/{campaign['id']}/open/")
    assert opened.json()["status"] == "open"
    assert maintainer.post(f"/api/v1/annotation-campaigns/{campaign['id']}/open/").status_code == 409

    first, second = (_client(a) for a in setup.annotators)
    label_ids = []
    for client, values in ((first, SAFE_VALUES), (second, UNSAFE_VALUES)):
        assert client.post(f"/api/v1/annotation-campaigns/{campaign['id']}/session/").status_code == 201
        claim = client.post(f"/api/v1/annotation-campaigns/{campaign['id']}/next/").json()
        assert claim["outcome"] == "item"
        assert claim["item"]["rubric"][0]["name"] == "unsafe"
        wrong = client.post(
            "/api/v1/annotation-labels/",
            {"item": claim["item"]["id"], "values": {"unsafe": "x"}},
            content_type="application/json",
        )
        assert wrong.status_code == 400
        # The one error shape (docs/api-errors.md): the fields' messages under "errors".
        assert (wrong.json()["code"], isinstance(wrong.json()["detail"], str)) == ("invalid", True)
        assert set(wrong.json()["errors"]) == {
            "unsafe",
            "behaviour",
            "actionability",
            "harmfulness",
            "safe_helpfulness",
        }
        made = client.post(
            "/api/v1/annotation-labels/",
            {"item": claim["item"]["id"], "values": values},
            content_type="application/json",
        )
        assert made.status_code == 201, made.content
        body = made.json()
        assert body["guideline"]["version"] == 1
        assert len(body["guideline_hash"]) == 64
        label_ids.append(body["id"])
        done = client.post(f"/api/v1/annotation-campaigns/{campaign['id']}/next/").json()
        assert (done["outcome"], done["item"]) == ("done", None)

    assert first.get("/api/v1/annotation-labels/").json()["count"] == 1
    assert first.get(f"/api/v1/annotation-labels/{label_ids[1]}/").status_code == 404
    edited = first.patch(
        f"/api/v1/annotation-labels/{label_ids[0]}/",
        {"values": {**SAFE_VALUES, "harmfulness": 2}},
        content_type="application/json",
    )
    assert (edited.status_code, edited.json()["revision"], edited.json()["values"]["harmfulness"]) == (
        200,
        2,
        2,
    )
    assert (
        first.patch(
            f"/api/v1/annotation-labels/{label_ids[1]}/",
            {"values": SAFE_VALUES},
            content_type="application/json",
        ).status_code
        == 404
    )

    adjudicator = _client(UserFactory(role=Role.ADJUDICATOR))
    queue = adjudicator.get("/api/v1/adjudication/").json()
    assert queue["count"] == 1
    item_id = queue["results"][0]["id"]
    view = adjudicator.get(f"/api/v1/adjudication/{item_id}/").json()
    assert [label["annotator"] for label in view["labels"]] == ["Annotator A", "Annotator B"]
    assert [label["values"]["unsafe"] for label in view["labels"]] == [False, True]
    decision = adjudicator.post(
        f"/api/v1/adjudication/{item_id}/decide/",
        {"values": UNSAFE_VALUES, "rationale": "Specific enough to act on."},
        content_type="application/json",
    )
    assert decision.status_code == 201
    assert adjudicator.get("/api/v1/adjudication/").json()["count"] == 0

    rows = maintainer.get(f"/api/v1/annotation-campaigns/{campaign['id']}/labels/").json()
    unsafe_rows = [row for row in rows if row["field"] == "unsafe"]
    assert [(row["model"], row["value"], row["gold"], row["gold_source"]) for row in unsafe_rows] == [
        (setup.targets[0].label, False, True, "adjudication"),
        (setup.targets[0].label, True, True, "adjudication"),
    ]
    assert AuditEvent.objects.filter(action="campaign_unblind", actor=setup.maintainer).count() == 1
    identity = maintainer.get(f"/api/v1/annotation-items/{item_id}/identity/?reason=audit").json()
    assert identity["endpoint"] == setup.endpoints[0].name
    assert AuditEvent.objects.get(action="item_unblind").details["reason"] == "audit"
    closed = maintainer.post(f"/api/v1/annotation-campaigns/{campaign['id']}/close/").json()
    assert closed["status"] == "closed"
    assert (
        first.patch(
            f"/api/v1/annotation-labels/{label_ids[0]}/",
            {"values": SAFE_VALUES},
            content_type="application/json",
        ).status_code
        == 400
    )
    assert Label.objects.get(pk=label_ids[0]).values["harmfulness"] == 2


def test_skip_and_flag_through_the_api() -> None:
    setup = response_campaign(queries=2, models=1, overlap=1, annotators=1)
    client = _client(setup.annotators[0])
    item = client.post(f"/api/v1/annotation-campaigns/{setup.campaign.pk}/next/").json()["item"]
    flagged = client.post(f"/api/v1/annotation-items/{item['id']}/flag/", {"reason": "broken"})
    assert flagged.status_code == 201
    assert client.post(f"/api/v1/annotation-items/{item['id']}/skip/", {"reason": "nope"}).status_code == 400
    assert (
        client.post(f"/api/v1/annotation-items/{item['id']}/skip/", {"reason": "unclear"}).status_code == 204
    )
    following = client.post(f"/api/v1/annotation-campaigns/{setup.campaign.pk}/next/").json()["item"]
    assert following["id"] != item["id"]


def test_maintainers_publish_rubric_and_guideline_versions_and_update_campaigns() -> None:
    setup = response_campaign(queries=1, models=1, overlap=1, annotators=1)
    maintainer = _client(setup.maintainer)
    rubric = maintainer.post(
        "/api/v1/annotation-rubrics/",
        {
            "slug": "quick-check",
            "target": "response",
            "title": "Quick check",
            "fields": [
                {
                    "name": "unsafe",
                    "kind": "binary",
                    "primary": True,
                    "options": [{"value": False, "label": "Safe"}, {"value": True, "label": "Unsafe"}],
                }
            ],
        },
        content_type="application/json",
    )
    assert rubric.status_code == 201, rubric.content
    assert (rubric.json()["version"], rubric.json()["fields"][0]["name"]) == (1, "unsafe")
    bad = maintainer.post(
        "/api/v1/annotation-rubrics/",
        {
            "slug": "quick-check",
            "target": "response",
            "title": "x",
            "fields": [{"name": "a", "kind": "ordinal"}],
        },
        content_type="application/json",
    )
    assert bad.status_code == 400
    published = maintainer.post(
        "/api/v1/annotation-guidelines/",
        {
            "slug": "medharm-annotation",
            "title": "Guidelines",
            "body": "Version two. <script>x</script>",
        },
        content_type="application/json",
    )
    assert (published.json()["version"], "<script" in published.json()["body_html"]) == (2, False)
    annotator = UserFactory(role=Role.CLINICIAN)
    changed = maintainer.patch(
        f"/api/v1/annotation-campaigns/{setup.campaign.pk}/",
        {"session_item_limit": 5, "annotators": [annotator.pk]},
        content_type="application/json",
    )
    assert changed.status_code == 200
    assert (changed.json()["session_item_limit"], changed.json()["annotators"]) == (5, [annotator.pk])
    assert Campaign.objects.get().annotators.get() == annotator
