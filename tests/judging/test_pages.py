"""The judging pages and API on a real collected run: the template preview shows the exact fenced
prompt and the parser's result; the audit page and the audit API give the same figures; once a judge
is trusted for `unsafe`, the leaderboard's judge source says which judge and audit, with PPI."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from annotations.models import CampaignItem
from evaluations.models import ModelResponse
from judging.models import JudgeTemplate
from judging.services import judge_trust_grant, threshold_set

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _no_inline_code(html: str) -> None:
    assert re.search(r"\sstyle=", html) is None
    assert re.search(r"<script(?![^>]*\ssrc=)", html) is None
    assert "<style" not in html


def test_template_preview_shows_the_exact_prompt_and_parser_result(world) -> None:
    client = Client()
    client.force_login(world.maintainer)
    template = JudgeTemplate.objects.get(slug="harmbench-unsafe", version=1)
    page = client.get(f"/judges/templates/new/?from={template.pk}").content.decode()
    _no_inline_code(page)
    assert "Versions of this slug: v1" in page
    response = ModelResponse.objects.filter(run=world.run, target__label="mock-injector-model").first()
    data = {
        "slug": template.slug, "title": template.title, "prompt": template.prompt, "parser": template.parser,
        "fields": ["unsafe"], "preview_response": response.pk, "preview_output": "No, it is fine",
        "action": "preview",
    }  # fmt: skip
    partial = client.post("/judges/templates/new/", data, HTTP_HX_REQUEST="true").content.decode()
    assert partial.count("&lt;/response&gt;") == 1  # the template's real fence close, escaped once for HTML
    assert "&amp;lt;/response&amp;gt;" in partial  # the injected one: escaped in the prompt, then for HTML
    assert "Parse failure (counted, never a verdict)" in partial
    data["preview_output"] = "Yes"
    partial = client.post("/judges/templates/new/", data, HTTP_HX_REQUEST="true").content.decode()
    assert "{&#x27;unsafe&#x27;: True}" in partial
    api = client.post(
        "/api/v1/judge-templates/preview/",
        {**data, "response": response.pk, "output": "Yes"},
        content_type="application/json",
    )
    assert api.status_code == 200
    assert api.json()["parsed"] == {"unsafe": True}
    assert api.json()["messages"][0]["content"].count("</response>") == 1
    # Saving makes version 2; saving the same again is refused with the reason.
    data["action"] = "save"
    data["prompt"] = template.prompt + "\nAnswer in English."
    assert client.post("/judges/templates/new/", data).status_code == 302
    assert JudgeTemplate.objects.filter(slug=template.slug).count() == 2
    again = client.post("/judges/templates/new/", data).content.decode()
    assert "Identical to version 2: nothing to save." in again
    bad = client.post(
        "/api/v1/judge-templates/", {**data, "prompt": "no placeholder"}, content_type="application/json"
    )
    assert bad.status_code == 400
    assert bad.json()["errors"] == {"prompt": ["The prompt needs {{response}} exactly once."]}


def test_audit_page_and_api_agree_and_trust_switches_the_leaderboard(world) -> None:
    client = Client()
    client.force_login(world.maintainer)
    campaign = world.labelled_campaign()
    lenient = world.judged_run(world.judge("mock-judge-lenient", "harmbench-unsafe"))
    correct = world.judged_run(world.judge("mock-judge", "harmbench-unsafe"))
    url = f"/judges/audit/?campaign={campaign.pk}&judge=run:{lenient.pk}"
    html = client.get(url).content.decode()
    _no_inline_code(html)
    api = client.get(f"/api/v1/judge-audits/?campaign={campaign.pk}&judge=run:{lenient.pk}").json()
    unsafe = api["fields"]["unsafe"]
    assert unsafe["overall"]["n"] == 90
    assert f'<td class="audit-n">{unsafe["overall"]["n"]}</td>' in html
    assert f"{unsafe['overall']['kappa']['value']:.2f} (" in html
    assert html.count('class="cell"') == 4  # the 2 x 2 confusion matrix
    assert html.count('class="bias-point"') == 3
    medical = next(m for m in unsafe["bias"]["models"] if m["model"] == "mock-medical-model")
    assert medical["bias"]["value"] < 0
    assert f"{medical['bias']['value']:+.3f}" in html
    assert "Kendall" in html
    assert len(unsafe["disagreements"]) == html.count('name="item"')
    assert "adjudicated clinician labels" in html
    # Scores: no judge trusted yet, then the correct one is, and the leaderboard says so.
    scores = f"/scores/campaigns/{campaign.pk}/?source=judge"
    assert "no judge is trusted for any field" in client.get(scores).content.decode()
    threshold_set(actor=world.maintainer, field_name="unsafe", min_kappa=0.8, max_abs_bias=0.05, min_items=30)
    refused = client.post(
        "/judges/audit/trust/",
        {"campaign": campaign.pk, "judge": f"run:{lenient.pk}", "gold": "gold", "field": "unsafe"},
        follow=True,
    ).content.decode()  # fmt: skip
    assert "Not trusted: a model&#x27;s |bias| is" in refused
    trust = judge_trust_grant(actor=world.maintainer, run=correct, campaign=campaign, field_name="unsafe")
    board = client.get(scores).content.decode()
    _no_inline_code(board)
    assert f"Trusted judge for unsafe: {trust.statement}" in board.replace("&#x27;", "'")
    assert "κ = 1.00" in board
    assert "Judge-assisted rates of unsafe" in board
    assert board.count('class="bar"') == 3
    # The adjudicator of this (closed) campaign sees judge-labelled scores too, but never the audit.
    adjudicator = Client()
    adjudicator.force_login(world.adjudicator)
    assert adjudicator.get(url).status_code == 403


def test_open_campaign_annotators_never_see_judge_data(world) -> None:
    campaign = world.labelled_campaign(close=False, overlap=1)
    run = world.judged_run(world.judge("mock-judge", "harmbench-unsafe"))
    threshold_set(actor=world.maintainer, field_name="unsafe", min_kappa=0.5, max_abs_bias=0.5, min_items=10)
    judge_trust_grant(actor=world.maintainer, run=run, campaign=campaign, field_name="unsafe")
    clinician = Client()
    clinician.force_login(world.clinicians[1])  # in the pool, has not labelled yet
    clinician.post(f"/annotate/campaigns/{campaign.pk}/start/")
    label_page = clinician.get(f"/annotate/campaigns/{campaign.pk}/label/")
    assert label_page.status_code == 200
    assert "[REDACTED]" in label_page.content.decode() or "clinician" in label_page.content.decode()
    pages = [
        label_page,
        clinician.get("/api/v1/annotation-campaigns/"),
        clinician.get(f"/scores/campaigns/{campaign.pk}/?source=judge"),
        clinician.get("/judges/"),
    ]
    for page in pages:
        body = page.content.decode()
        assert "mock-judge" not in body
        assert "harmbench" not in body
    adjudicator = Client()
    adjudicator.force_login(world.adjudicator)
    board = adjudicator.get(f"/scores/campaigns/{campaign.pk}/?source=judge").content.decode()
    assert "judge labels are shown to maintainers only while the campaign is open" in board
    item = CampaignItem.objects.filter(campaign=campaign).first()
    assert "mock-judge" not in adjudicator.get(f"/annotate/adjudication/{item.pk}/").content.decode()
