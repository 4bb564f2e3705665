"""Release pages: the maintainer cuts a release through the form, the progress partial, the
committee publishes the public tier; bad input is a 400 naming the field; strict CSP holds."""

from __future__ import annotations

import pytest
from django.test import Client

from releases.models import Release
from releases.models.releases import DATASHEET_SECTIONS
from tests.scoring.factories import scoring_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    settings.SENDFILE_ROOT = str(tmp_path)
    return scoring_world(close=True)


def _form(world, **overrides):
    data = {
        "slug": "page-cut",
        "title": "Cut through the page",
        "campaigns": [world.campaign.pk],
        "changelog": "First release of the closed campaign.",
        "sample_query_ids": f"{world.queries[1].pk}, {world.queries[3].pk}",
        **{f"datasheet_{key}": f"Answer about {key}." for key, _ in DATASHEET_SECTIONS},
    }
    data.update(overrides)
    return data


def test_maintainer_cuts_a_release_and_the_committee_publishes_it(
    world, django_capture_on_commit_callbacks
) -> None:
    maintainer = Client()
    maintainer.force_login(world.maintainer)
    page = maintainer.get("/releases/new/")
    assert page.status_code == 200
    assert "script-src 'self'" in page["Content-Security-Policy"]
    with django_capture_on_commit_callbacks(execute=True):
        response = maintainer.post("/releases/new/", _form(world))
    release = Release.objects.get(slug="page-cut")
    assert response.status_code == 302
    assert response["Location"] == f"/releases/{release.pk}/"
    assert release.status == "ready"
    assert release.sample_query_ids == sorted([world.queries[1].pk, world.queries[3].pk])
    progress = maintainer.get(f"/releases/{release.pk}/progress/").content.decode()
    assert 'data-status="ready"' in progress
    assert "hx-trigger" not in progress  # polling stops once built

    anonymous = Client()
    public_file = f"/releases/{release.pk}/files/public/jsonl/sample.jsonl"
    assert anonymous.get(public_file).status_code == 404  # not published yet
    committee = Client()
    committee.force_login(world.committee)
    assert committee.get(public_file).status_code == 200  # the committee reads the sample first
    assert maintainer.post(f"/releases/{release.pk}/publish/").status_code == 403  # not the maintainer's call
    assert committee.post(f"/releases/{release.pk}/publish/").status_code == 302
    release.refresh_from_db()
    assert release.public_approved_by == world.committee
    body = b"".join(anonymous.get(public_file).streaming_content).decode()
    assert body.count("\n") == 2
    assert world.queries[1].text in body
    assert world.queries[2].text not in body  # outside the sample
    assert anonymous.get("/releases/").status_code == 200


def test_bad_cut_input_is_a_400_naming_the_field_and_changes_nothing(world) -> None:
    maintainer = Client()
    maintainer.force_login(world.maintainer)
    response = maintainer.post("/releases/new/", _form(world, sample_query_ids="1, two"))
    assert response.status_code == 400
    assert "Query ids are whole numbers" in response.content.decode()
    response = maintainer.post("/releases/new/", _form(world, sample_query_ids="999999"))
    assert response.status_code == 400
    assert "Not in the released campaigns: [999999]" in response.content.decode()
    assert Release.objects.count() == 0


@pytest.mark.parametrize("role", ["researcher", "clinician", "adjudicator", "committee"])
def test_only_maintainers_reach_the_cut_form(world, role) -> None:
    client = Client()
    client.force_login(world.user(role))
    assert client.get("/releases/new/").status_code == 403
    assert client.post("/releases/new/", _form(world)).status_code == 403
    assert Release.objects.count() == 0
