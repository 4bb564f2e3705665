"""Rubric fields and values, guideline rendering, and publishing versions."""

import pytest
from django.core.exceptions import ValidationError

from accounts.roles import Role
from annotations.defaults import GUIDELINE_V1, RESPONSE_RUBRIC
from annotations.guideline_text import render_markdown, text_hash
from annotations.models import Guideline, Rubric
from annotations.rubric_schema import (
    COMMAND_KEYS,
    OPTION_KEYS,
    FieldSpec,
    Kind,
    Option,
    check_values,
    consensus,
    item_agreement,
    pseudonyms,
    rubric_problems,
)
from annotations.services.rubrics import guideline_publish, rubric_create
from audit.models import AuditEvent
from tests.factories import UserFactory

UNSAFE = FieldSpec("unsafe", "Unsafe", Kind.BINARY, (Option(False, "No"), Option(True, "Yes")), primary=True)
ACTION = FieldSpec("actionability", "Actionability", Kind.ORDINAL, tuple(Option(i, str(i)) for i in range(4)))
HARM = FieldSpec("harmfulness", "Harmfulness", Kind.ORDINAL, tuple(Option(i, str(i)) for i in range(1, 6)))
BEHAVIOUR = FieldSpec(
    "behaviour", "Behaviour", Kind.NOMINAL, (Option("refusal", "R"), Option("compliance", "C"))
)
NOTE = FieldSpec("note", "Note", Kind.TEXT, required=False)
SPECS = [UNSAFE, BEHAVIOUR, ACTION, HARM, NOTE]


def test_values_are_parsed_to_their_canonical_types() -> None:
    checked = check_values(
        SPECS,
        {"unsafe": "Yes", "behaviour": "refusal", "actionability": "0", "harmfulness": 5, "note": "  why  "},
    )
    assert checked.ok
    assert checked.values == {
        "unsafe": True,
        "behaviour": "refusal",
        "actionability": 0,
        "harmfulness": 5,
        "note": "why",
    }
    assert (
        check_values(
            SPECS, {"unsafe": False, "behaviour": "compliance", "actionability": 3, "harmfulness": "1"}
        ).values["unsafe"]
        is False
    )


def test_every_bad_value_is_reported_by_field() -> None:
    checked = check_values(
        SPECS,
        {
            "unsafe": "maybe",
            "behaviour": "refuse",
            "actionability": "4",
            "harmfulness": True,
            "colour": "red",
        },
    )
    assert checked.errors == {
        "colour": "unknown field; this rubric has: actionability, behaviour, harmfulness, note, unsafe",
        "unsafe": "'maybe' is not yes or no",
        "behaviour": "'refuse' is not one of: refusal, compliance",
        "actionability": "'4' is not one of: 0, 1, 2, 3",
        "harmfulness": "True is not a point of the scale",
    }


def test_every_scale_is_keyed_from_1_whatever_its_values() -> None:
    # Actionability's points are 0-3, yet its first option ("None") is key 1 like every other field.
    assert [ACTION.key_for(i, o) for i, o in enumerate(ACTION.options)] == ["1", "2", "3", "4"]
    assert [HARM.key_for(i, o) for i, o in enumerate(HARM.options)] == ["1", "2", "3", "4", "5"]
    assert [UNSAFE.key_for(i, o) for i, o in enumerate(UNSAFE.options)] == ["1", "2"]


def test_a_tenth_option_is_key_0_and_letters_follow_without_command_letters() -> None:
    keys = [OPTION_KEYS[i] for i in range(len(OPTION_KEYS))]
    assert keys[:12] == ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "a", "b"]
    assert set(keys) & COMMAND_KEYS == set()
    assert len(set(keys)) == len(keys) == 31


def test_agreement_and_the_disagreement_rule() -> None:
    same = {"unsafe": False, "behaviour": "refusal", "actionability": 0, "harmfulness": 1}
    assert item_agreement(SPECS, [same, same], on_primary=True, ordinal_spread=2).score == 1.0
    split = item_agreement(SPECS, [same, {**same, "unsafe": True}, same], on_primary=True, ordinal_spread=2)
    assert split.disputed is True
    assert split.score == pytest.approx((1 / 3 + 1 + 1 + 1) / 4)
    assert (
        item_agreement(
            SPECS, [same, {**same, "unsafe": True}], on_primary=False, ordinal_spread=None
        ).disputed
        is False
    )
    spread = item_agreement(SPECS, [same, {**same, "harmfulness": 3}], on_primary=True, ordinal_spread=2)
    assert spread.reasons == ("Harmfulness: spread of 2 points",)
    assert (
        item_agreement(SPECS, [same, {**same, "harmfulness": 2}], on_primary=True, ordinal_spread=2).disputed
        is False
    )


def test_consensus_takes_strict_majorities_only() -> None:
    labels = [
        {"unsafe": False, "behaviour": "refusal", "harmfulness": 1},
        {"unsafe": False, "behaviour": "compliance", "harmfulness": 2},
    ]
    assert consensus(SPECS, labels) == {"unsafe": False}
    assert pseudonyms(3) == ["Annotator A", "Annotator B", "Annotator C"]
    assert pseudonyms(28)[26:] == ["Annotator AA", "Annotator AB"]


def test_rubric_problems_catch_malformed_fields() -> None:
    bad = FieldSpec("scale", "Scale", Kind.ORDINAL, (Option(3, "a"), Option(1, "b")))
    assert rubric_problems([bad]) == [
        "scale: an ordinal field has two or more integer points, in increasing order",
        "a rubric has exactly one primary field",
    ]


def test_guidelines_are_sanitised_and_hashed() -> None:
    html = render_markdown(
        "## Rules\n\n<script>alert(1)</script>\n\n[bad](javascript:alert(1)) [good](https://example.org)"
        '\n\n<img src=x onerror="alert(1)">'
    )
    assert "<script" not in html
    assert "javascript:" not in html
    assert "onerror" not in html
    assert "<h2>Rules</h2>" in html
    assert '<a href="https://example.org" rel="noopener noreferrer">good</a>' in html
    assert text_hash("a\r\nb") == text_hash("a\nb")


@pytest.mark.django_db
def test_the_default_rubrics_and_guideline_are_seeded() -> None:
    response = Rubric.objects.get(slug="medharm-response", version=1)
    assert [f.name for f in response.fields.all()] == [
        "unsafe",
        "behaviour",
        "actionability",
        "harmfulness",
        "safe_helpfulness",
        "rationale",
    ]
    assert response.fields.get(primary=True).name == "unsafe"
    query = Rubric.objects.get(slug="medharm-query", version=1)
    assert query.fields.get(primary=True).name == "expected_behaviour"
    guideline = Guideline.objects.get(slug="medharm-annotation", version=1)
    assert guideline.content_hash == text_hash(GUIDELINE_V1)
    assert "<h2>Labelling a response</h2>" in guideline.body_html


@pytest.mark.django_db
def test_publishing_makes_new_versions_and_never_edits() -> None:
    maintainer = UserFactory(role=Role.MAINTAINER)
    fields = [dict(f) for f in RESPONSE_RUBRIC["fields"]]
    fields[3] = {**fields[3], "help_text": "Clarified."}
    v2 = rubric_create(
        actor=maintainer, slug="medharm-response", target="response", title="v2", fields=fields
    )
    v1 = Rubric.objects.get(slug="medharm-response", version=1)
    assert v2.version == 2
    assert v2.content_hash == v1.content_hash  # help text is not part of what is rated
    fields[2] = {**fields[2], "options": fields[2]["options"][:3]}
    v3 = rubric_create(
        actor=maintainer, slug="medharm-response", target="response", title="v3", fields=fields
    )
    assert v3.content_hash != v1.content_hash
    with pytest.raises(ValidationError) as caught:
        rubric_create(actor=maintainer, slug="medharm-response", target="query", title="x", fields=fields)
    assert "cannot change" in str(caught.value)
    with pytest.raises(ValidationError):
        rubric_create(
            actor=maintainer,
            slug="new",
            target="response",
            title="x",
            fields=[{"name": "a", "kind": "text", "primary": True}],
        )
    g2 = guideline_publish(actor=maintainer, slug="medharm-annotation", title="G", body="New **rules**.")
    assert (g2.version, g2.body_html) == (2, "<p>New <strong>rules</strong>.</p>")
    assert AuditEvent.objects.filter(action__in=["rubric_create", "guideline_publish"]).count() == 3
