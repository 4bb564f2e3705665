"""External judge labels: CSV and JSONL, all or nothing, every problem with file, line and field."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.roles import Role
from annotations.models import CampaignItem
from judging.importers import JudgeImportRejected
from judging.models import ExternalJudgeLabel, ExternalLabelImport
from judging.selectors import judge_audit_compute, judge_source_get, judge_sources
from judging.services import external_labels_import
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_csv_import_then_audit_like_any_judge(world) -> None:
    campaign = world.labelled_campaign()
    items = list(CampaignItem.objects.filter(campaign=campaign).select_related("response").order_by("pk"))
    lines = ["judge,response,field,value,raw_output"]
    for item in items[:60]:
        lines.append(
            f"gpt-external,{item.response_id},unsafe,"
            f"{'true' if '[REDACTED]' in item.response.text else 'false'},ok"
        )
    lines.append(f"gpt-external,{items[60].response_id},unsafe,,I cannot decide")  # a parse failure
    batch = external_labels_import(
        actor=world.maintainer, name="ext.csv", raw="\n".join(lines).encode(), file_format="csv"
    )
    assert (batch.judge_name, batch.rows) == ("gpt-external", 61)
    assert ExternalJudgeLabel.objects.filter(value__isnull=True).count() == 1
    source = judge_source_get(user=world.maintainer, key="external:gpt-external")
    assert source in judge_sources(user=world.maintainer)
    audit = judge_audit_compute(
        user=world.maintainer, campaign=campaign, source=source, resamples=100
    ).audits["unsafe"]
    assert (audit.overall.n, audit.overall.parse_failures) == (60, 1)
    assert audit.overall.kappa.value == pytest.approx(1.0)
    with pytest.raises(JudgeImportRejected, match="imported already"):
        external_labels_import(
            actor=world.maintainer, name="ext.csv", raw="\n".join(lines).encode(), file_format="csv"
        )


def test_jsonl_import_by_item_reference(world) -> None:
    campaign = world.labelled_campaign()
    item = CampaignItem.objects.filter(campaign=campaign).first()
    raw = json.dumps({"judge": "j2", "item": item.pk, "field": "behaviour", "value": "full_refusal"}).encode()
    external_labels_import(actor=world.maintainer, name="j2.jsonl", raw=raw, file_format="jsonl")
    label = ExternalJudgeLabel.objects.get(judge_name="j2")
    assert (label.response_id, label.field, label.value) == (item.response_id, "behaviour", "full_refusal")


def test_every_problem_named_and_nothing_imported(world) -> None:
    response_id = world.run.responses.first().pk
    raw = "\n".join(
        [
            json.dumps({"judge": "j", "response": response_id, "field": "unsafe", "value": "maybe"}),
            json.dumps({"judge": "j", "response": 999999, "field": "unsafe", "value": True}),
            json.dumps({"judge": "j", "response": response_id, "field": "colour", "value": 1}),
            json.dumps({"judge": "j", "field": "unsafe", "value": True}),
            "{not json",
            json.dumps({"judge": "j", "response": response_id, "field": "actionability", "value": 9}),
        ]
    ).encode()
    with pytest.raises(JudgeImportRejected) as rejected:
        external_labels_import(actor=world.maintainer, name="bad.jsonl", raw=raw, file_format="jsonl")
    problems = [str(p) for p in rejected.value.problems]
    assert problems == [
        "bad.jsonl, line 1, field 'value': 'maybe' is not one of False, True",
        "bad.jsonl, line 3, field 'field': unknown field 'colour' (one of unsafe, behaviour, actionability, "
        "harmfulness, safe_helpfulness, refusal, refusal_class)",
        "bad.jsonl, line 4, field 'response': give a response id or an item id",
        "bad.jsonl, line 5: invalid JSON: Expecting property name enclosed in double quotes at column 2",
        "bad.jsonl, line 6, field 'value': 9 is not one of 0, 1, 2, 3",
    ]
    assert ExternalLabelImport.objects.count() == 0
    # The unknown response is found once the file itself reads cleanly.
    raw = json.dumps({"judge": "j", "response": 999999, "field": "unsafe", "value": True}).encode()
    with pytest.raises(JudgeImportRejected, match="line 1, field 'response': no response with id 999999"):
        external_labels_import(actor=world.maintainer, name="b.jsonl", raw=raw, file_format="jsonl")
    with pytest.raises(PermissionDenied):
        external_labels_import(
            actor=UserFactory(role=Role.ADJUDICATOR), name="b.jsonl", raw=raw, file_format="jsonl"
        )
    assert ExternalJudgeLabel.objects.count() == 0


def _csv(judge: str, items, *, truth: bool = True) -> bytes:
    lines = ["judge,response,field,value"]
    for item in items:
        unsafe = "[REDACTED]" in item.response.text
        lines.append(f"{judge},{item.response_id},unsafe,{'true' if unsafe == truth else 'false'}")
    return "\n".join(lines).encode()


def test_an_imported_judge_is_trusted_on_the_files_audited_only(world, client) -> None:
    from judging.selectors import trust_for, trust_list_live, trust_status, trusted_judge_labels
    from judging.services import judge_trust_grant, judge_trust_revoke, threshold_set

    campaign = world.labelled_campaign()
    items = list(CampaignItem.objects.filter(campaign=campaign).select_related("response").order_by("pk"))
    first = external_labels_import(
        actor=world.maintainer, name="a.csv", raw=_csv("gpt-x", items[:60]), file_format="csv"
    )
    threshold_set(actor=world.maintainer, field_name="unsafe", min_kappa=0.8, max_abs_bias=0.1, min_items=50)
    wrong = external_labels_import(
        actor=world.maintainer, name="w.csv", raw=_csv("contrarian", items, truth=False), file_format="csv"
    )
    with pytest.raises(ValidationError, match=r"below 0\.8"):
        judge_trust_grant(
            actor=world.maintainer, external_judge="contrarian", campaign=campaign, field_name="unsafe"
        )
    assert wrong.rows == 90
    threshold_set(actor=world.maintainer, field_name="behaviour", min_kappa=0.5, max_abs_bias=0.2)
    with pytest.raises(ValidationError, match="no imported labels of behaviour"):
        judge_trust_grant(
            actor=world.maintainer, external_judge="gpt-x", campaign=campaign, field_name="behaviour"
        )
    with pytest.raises(ValidationError, match="either a judge run or an imported judge"):
        judge_trust_grant(actor=world.maintainer, campaign=campaign, field_name="unsafe")

    # Trusted through the page, on the one file audited.
    client.force_login(world.maintainer)
    page = client.post(
        "/judges/audit/trust/",
        {"campaign": campaign.pk, "judge": "external:gpt-x", "gold": "gold", "field": "unsafe"},
    )
    assert page.status_code == 302
    trust = trust_for(field_name="unsafe", external_judge="gpt-x")
    assert trust is not None
    assert trust_status(trust) == "trusted"
    assert (trust.judge, trust.template, trust.judge_run, trust.n_items) == (None, None, None, 60)
    assert list(trust.imports.all()) == [first]
    assert trust.statement == (
        f"judge gpt-x (imported), imported labels, audited on 60 items in collection run {world.run.pk}, "
        "category toxicology, κ = 1.00"
    )
    assert list(trust_list_live()) == [trust]

    # Labels imported later under the same name were not audited: the scores do not get them.
    external_labels_import(
        actor=world.maintainer, name="b.csv", raw=_csv("gpt-x", items[60:]), file_format="csv"
    )
    labels, used = trusted_judge_labels(response_ids={i.response_id for i in items})
    assert [(use.trust, use.left_out) for use in used] == [(trust, 0)]
    assert set(labels) == {i.response_id for i in items[:60]}
    assert all(labels[i.response_id]["unsafe"] is ("[REDACTED]" in i.response.text) for i in items[:60])

    # The audit page says so; a revoked trust is void for the scores.
    audit = client.get("/judges/audit/", {"campaign": campaign.pk, "judge": "external:gpt-x"})
    assert "Trusted for unsafe: judge gpt-x (imported)" in audit.content.decode()
    judge_trust_revoke(actor=world.maintainer, trust=trust)
    assert trusted_judge_labels(response_ids={i.response_id for i in items}) == ({}, [])
    with pytest.raises(PermissionDenied):
        judge_trust_grant(
            actor=UserFactory(role=Role.CLINICIAN),
            external_judge="gpt-x",
            campaign=campaign,
            field_name="unsafe",
        )
