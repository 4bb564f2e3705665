"""The query bank keeps a blind query campaign blind (issue 8, leak 2): while a clinician is in the
pool of an open blind query campaign, the bank's pages and API show them none of the fields the
campaign asks for on its queries, and search, filters, counts and ordering do not give them away."""

import pytest
from django.test import Client

from accounts.roles import Role
from annotations.services.campaigns import campaign_close
from querybank.models import Category, ExpectedBehaviour, Severity
from tests.annotations.factories import query_campaign
from tests.factories import QueryFactory, UserFactory

pytestmark = pytest.mark.django_db

EXTERNAL_ID = "gold-marker-ZQ41"
NOTES = "Curator note on the marker query"
SOURCE_FILE = "test_gpt4_category_7.csv"


@pytest.fixture
def blind() -> dict[str, object]:
    fetal = Category.objects.get(slug="fetal-harm")
    asked = QueryFactory(
        external_id=EXTERNAL_ID,
        text="Marker query text about general medicine storage.",
        category=fetal,
        expected_behaviour=ExpectedBehaviour.REDIRECT,
        severity=Severity.CRITICAL,
        notes=NOTES,
        source="blindtest",
        source_file=SOURCE_FILE,
        source_row=7,
    )
    other = QueryFactory(external_id="plain-ZQ42", category=fetal, source="othersource")
    annotators = [UserFactory(role=Role.CLINICIAN) for _ in range(2)]
    campaign = query_campaign(queries=[asked], overlap=2, annotators=annotators)
    outsider = UserFactory(role=Role.CLINICIAN)
    return {
        "asked": asked,
        "other": other,
        "campaign": campaign,
        "annotator": annotators[0],
        "outsider": outsider,
    }


def _client(user: object) -> Client:
    client = Client()
    client.force_login(user)
    return client


SECRETS = (
    EXTERNAL_ID,
    "fetal-harm",
    "Fetal harm",
    "redirect",
    ExpectedBehaviour.REDIRECT.label,
    "critical",
    "Critical",
    NOTES,
    SOURCE_FILE,
)


def test_pages_and_api_hide_what_the_campaign_asks_for(blind: dict[str, object]) -> None:
    asked = blind["asked"]
    client = _client(blind["annotator"])
    detail = client.get(f"/queries/{asked.pk}/").content.decode()
    api_detail = client.get(f"/api/v1/queries/{asked.pk}/").json()
    api_list = client.get("/api/v1/queries/?source=blindtest").json()["results"]
    # The table (the page around it offers every category in its filter).
    page_list = client.get("/queries/?q=Marker+query", HTTP_HX_REQUEST="true").content.decode()
    assert "Marker query text" in detail
    assert "Marker query text" in page_list
    for secret in SECRETS:
        assert secret not in detail, secret
        assert secret not in page_list, secret
    assert {
        key: api_detail[key]
        for key in (
            "external_id",
            "category",
            "expected_behaviour",
            "severity",
            "notes",
            "source_file",
            "source_row",
            "updated_at",
        )
    } == {
        "external_id": None,
        "category": None,
        "expected_behaviour": None,
        "severity": None,
        "notes": None,
        "source_file": None,
        "source_row": None,
        "updated_at": None,
    }
    assert api_detail["text"] == asked.text
    assert api_list == [api_detail]


def test_search_filters_and_counts_do_not_give_the_hidden_fields_away(blind: dict[str, object]) -> None:
    client = _client(blind["annotator"])
    # Searching the external id, or filtering by the hidden category, does not find the query.
    assert client.get(f"/api/v1/queries/?search={EXTERNAL_ID}").json()["count"] == 0
    by_category = client.get("/api/v1/queries/?category=fetal-harm").json()["results"]
    assert [q["external_id"] for q in by_category] == ["plain-ZQ42"]
    assert "Marker query" not in client.get("/queries/?category=fetal-harm").content.decode()
    counts = {
        c["slug"]: c["query_count"] for c in client.get("/api/v1/categories/?page_size=100").json()["results"]
    }
    assert counts["fetal-harm"] == 1  # the other query only
    # Ordering: the hidden query comes after every other query, whatever its category.
    ids = [q["id"] for q in client.get("/api/v1/queries/?page_size=500").json()["results"]]
    assert ids[-1] == blind["asked"].pk


def test_others_and_a_closed_campaign_see_every_field(blind: dict[str, object]) -> None:
    asked = blind["asked"]
    outsider = _client(blind["outsider"]).get(f"/api/v1/queries/{asked.pk}/").json()
    assert (outsider["external_id"], outsider["category"], outsider["severity"]) == (
        EXTERNAL_ID,
        "fetal-harm",
        "critical",
    )
    campaign = blind["campaign"]
    campaign_close(campaign=campaign, actor=UserFactory(role=Role.MAINTAINER))
    client = _client(blind["annotator"])
    after = client.get(f"/api/v1/queries/{asked.pk}/").json()
    assert (after["external_id"], after["expected_behaviour"]) == (EXTERNAL_ID, "redirect")
    assert client.get(f"/api/v1/queries/?search={EXTERNAL_ID}").json()["count"] == 1
    assert EXTERNAL_ID in client.get(f"/queries/{asked.pk}/").content.decode()
