"""Importing another tool's annotations: the long format, all-or-nothing, line-numbered errors."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from accounts.roles import Role
from annotations.importers import AnnotationImportRejected
from annotations.models import Adjudication, Campaign, CampaignItem, CampaignStatus, GoldSource, Label
from annotations.selectors import adjudication_queue
from annotations.services.imports import annotations_import
from evaluations.models import CollectionRun, ModelResponse
from querybank.models import Category, Query
from tests.annotations.factories import guideline, response_rubric
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PROMPT_1 = "Synthetic prompt asking which warning signs after an unknown exposure need urgent care."
PROMPT_2 = "Synthetic prompt asking where a worried parent can get advice about medicine safety."


def _rows() -> list[dict[str, object]]:
    rows = []
    for item, model, prompt, response, ratings in [
        (
            "r1",
            "legacy-model-a",
            PROMPT_1,
            "Seek urgent care and call a poison centre.",
            {"ann1": ("no", 1), "ann2": ("no", 1)},
        ),
        (
            "r2",
            "legacy-model-b",
            PROMPT_1,
            "Here is a general overview of symptoms.",
            {"ann1": ("no", 2), "ann2": ("yes", 4)},
        ),
        (
            "r3",
            "legacy-model-a",
            PROMPT_2,
            "Ask a pharmacist or your doctor.",
            {"ann1": ("no", 1), "ann3": ("no", 1)},
        ),
    ]:
        for rater, (unsafe, harm) in ratings.items():
            base = {"item": item, "model": model, "prompt": prompt, "response": response, "rater": rater}
            rows.append(
                {
                    **base,
                    "field": "unsafe",
                    "value": unsafe,
                    **({"adjudicated": "yes"} if item == "r2" else {}),
                }
            )
            rows.append({**base, "field": "harmfulness", "value": harm})
    rows[0]["category"] = "pharmacology"
    return rows


def _jsonl(rows: list[dict[str, object]]) -> bytes:
    return "\n".join(json.dumps(row) for row in rows).encode()


def _import(files: list[tuple[str, bytes]], file_format: str = "jsonl", **kwargs: object):
    return annotations_import(
        files=files,
        file_format=file_format,
        actor=UserFactory(role=Role.MAINTAINER),
        name="Legacy study",
        rubric=response_rubric(),
        guideline=guideline(),
        default_category=Category.objects.get(slug="toxicology"),
        **kwargs,
    )


def test_a_jsonl_import_becomes_a_closed_campaign_with_labels_and_gold() -> None:
    result = _import([("legacy.jsonl", _jsonl(_rows()))])
    campaign = result.campaign
    assert (result.items, result.labels, result.raters, result.adjudicated, result.new_queries) == (
        3,
        6,
        3,
        1,
        2,
    )
    assert (campaign.status, campaign.overlap, campaign.imported_from) == (
        CampaignStatus.CLOSED,
        2,
        "legacy.jsonl",
    )
    labels = Label.objects.filter(campaign=campaign)
    assert sorted(labels.values_list("external_rater", flat=True)) == [
        "ann1",
        "ann1",
        "ann1",
        "ann2",
        "ann2",
        "ann3",
    ]
    assert all(label.annotator_id is None and label.guideline_id is None for label in labels)
    r2 = CampaignItem.objects.get(campaign=campaign, response__text="Here is a general overview of symptoms.")
    assert Label.objects.get(item=r2, external_rater="ann2").values == {"unsafe": True, "harmfulness": 4}
    assert (r2.disputed, r2.gold_source, r2.gold_values) == (True, GoldSource.ADJUDICATION, {"unsafe": True})
    assert Adjudication.objects.get(item=r2).imported is True
    r1 = CampaignItem.objects.get(campaign=campaign, response__text__startswith="Seek urgent")
    assert (r1.disputed, r1.gold_source) == (False, GoldSource.CONSENSUS)
    # The two responses to the first prompt share one query; its category came from the row.
    query = Query.objects.get(text=PROMPT_1)
    assert (query.category.slug, query.source) == ("pharmacology", "annotation-import")
    assert ModelResponse.objects.filter(query=query).count() == 2
    run = CollectionRun.objects.get(name="Imported: Legacy study")
    assert sorted(run.targets.values_list("label", flat=True)) == ["legacy-model-a", "legacy-model-b"]
    # Already adjudicated on import: nothing waits in the queue.
    assert list(adjudication_queue(user=UserFactory(role=Role.ADJUDICATOR))) == []


def test_csv_gives_the_same_result() -> None:
    columns = ["item", "model", "prompt", "response", "rater", "field", "value", "adjudicated", "category"]
    lines = [",".join(columns)]
    for row in _rows():
        cells = [str(row.get(column, "")) for column in columns]
        lines.append(",".join(f'"{cell}"' for cell in cells))
    result = _import([("legacy.csv", "\n".join(lines).encode())], file_format="csv")
    assert (result.items, result.labels, result.adjudicated) == (3, 6, 1)


def test_every_problem_is_reported_with_its_line_and_nothing_is_written() -> None:
    rows = _rows()
    rows[1]["value"] = "7"  # harmfulness is 1-5
    rows[2]["field"] = "unsafety"
    rows[3]["model"] = "another-model"  # item r1 changes model
    rows[7]["rater"] = "ann1"  # line 8 rates r2's harmfulness for ann1 again (first on line 6)
    del rows[6]["prompt"]
    raw = _jsonl(rows) + b"\n{not json}\n"
    with pytest.raises(AnnotationImportRejected) as caught:
        _import([("bad.jsonl", raw)])
    found = [(p.line, p.field, p.message) for p in caught.value.problems]
    assert (2, "value", "harmfulness: '7' is not one of: 1, 2, 3, 4, 5") in found
    assert (3, "field", "unknown rubric field 'unsafety' (did you mean 'unsafe'?)") in found
    assert any(line == 4 and field == "model" for line, field, _ in found)
    assert (7, "prompt", "required field is missing") in found
    assert (8, "rater", "rater 'ann1' already rated 'harmfulness' of item 'r2' on bad.jsonl, line 6") in found
    assert any(line == 13 and "invalid JSON" in message for line, _, message in found)
    assert Campaign.objects.count() == 0
    assert Query.objects.filter(source="annotation-import").count() == 0
    assert CollectionRun.objects.count() == 0


def test_the_same_files_cannot_be_imported_twice() -> None:
    files = [("legacy.jsonl", _jsonl(_rows()))]
    _import(files)
    with pytest.raises(AnnotationImportRejected, match="already imported"):
        _import(files)
    assert Campaign.objects.count() == 1


def test_a_csv_with_a_wrong_header_names_the_columns() -> None:
    with pytest.raises(AnnotationImportRejected) as caught:
        _import(
            [("x.csv", b"item,model,prompt,answer,rater,field,value\n1,m,p,r,a,unsafe,no\n")],
            file_format="csv",
        )
    messages = [(p.field, p.message) for p in caught.value.problems]
    allowed = (
        "item, model, prompt, response, rater, field, value, adjudicated, category, "
        "expected_behaviour, prompt_id"
    )
    assert ("answer", f"unknown column; allowed: {allowed}") in messages
    assert ("response", "required column is missing from the header") in messages


def test_the_command_and_the_api(tmp_path, client: Client) -> None:
    maintainer = UserFactory(role=Role.MAINTAINER)
    path = tmp_path / "legacy.jsonl"
    path.write_bytes(_jsonl(_rows()))
    call_command("import_annotations", str(path), "--actor", maintainer.email, "--name", "From the command")
    assert Campaign.objects.get().name == "From the command"
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_annotations", str(path), "--actor", maintainer.email)

    client.force_login(maintainer)
    other = _rows()
    for row in other:
        row["item"] = f"api-{row['item']}"
        row["response"] = f"{row['response']} (second study)"
    payload = {
        "files": [("api.jsonl", _jsonl(other))],
        "file_format": "jsonl",
        "name": "Via the API",
        "rubric": response_rubric().pk,
        "guideline": guideline().pk,
        "default_category": "toxicology",
    }
    from django.core.files.uploadedfile import SimpleUploadedFile

    payload["files"] = [SimpleUploadedFile("api.jsonl", _jsonl(other))]
    response = client.post("/api/v1/annotation-imports/", payload)
    assert response.status_code == 201, response.content
    assert response.json()["labels"] == 6
    bad = client.post(
        "/api/v1/annotation-imports/", {**payload, "files": [SimpleUploadedFile("bad.jsonl", b"[1]\n")]}
    )
    assert bad.status_code == 400
    assert bad.json()["problems"] == [
        {
            "file": "bad.jsonl",
            "line": 1,
            "field": None,
            "message": "each line must be a JSON object, not an array",
        }
    ]
