"""Undo in the labelling screen: the session's previous label reopens in place and a correction
goes through the label edit service (a revision and an audit event), never someone else's label."""

import re

import pytest
from django.test import Client

from annotations.models import Label
from annotations.services.labelling import item_next, label_submit, session_start
from audit.models import AuditEvent
from tests.annotations.factories import SAFE_VALUES, UNSAFE_VALUES, response_campaign

pytestmark = pytest.mark.django_db


def _post_values(values: dict[str, str]) -> dict[str, str]:
    return {f"v_{name}": value for name, value in values.items()}


def _labelled_twice():
    setup = response_campaign(queries=3, models=1, overlap=2, annotators=2)
    annotator, colleague = setup.annotators
    session = session_start(campaign=setup.campaign, annotator=annotator)
    labels = []
    for values in (SAFE_VALUES, UNSAFE_VALUES):
        item = item_next(campaign=setup.campaign, annotator=annotator, session=session).item
        labels.append(label_submit(item=item, annotator=annotator, values=values))
    held = item_next(campaign=setup.campaign, annotator=annotator, session=session).item
    return setup, annotator, colleague, labels, held


def test_undo_reopens_the_previous_labels_in_turn_and_a_correction_is_an_edit() -> None:
    setup, annotator, _, (first, second), held = _labelled_twice()
    client = Client()
    client.force_login(annotator)
    base = f"/annotate/campaigns/{setup.campaign.pk}"

    page = client.get(f"{base}/undo/", HTTP_HX_REQUEST="true")
    assert page.status_code == 200
    assert f'data-item="{second.item_id}"' in page.text
    assert f'action="{base}/labels/{second.pk}/correct/"' in page.text
    assert 'value="yes" data-key="2" checked' in page.text  # the stored values are shown
    # U again goes one further back; before the first there is nothing, and the held item returns.
    page = client.get(f"{base}/undo/?before={second.pk}", HTTP_HX_REQUEST="true")
    assert f'data-item="{first.item_id}"' in page.text
    page = client.get(f"{base}/undo/?before={first.pk}", HTTP_HX_REQUEST="true")
    assert "Nothing earlier to reopen in this session." in page.text
    assert f'data-item="{held.pk}"' in page.text

    response = client.post(
        f"{base}/labels/{second.pk}/correct/",
        _post_values({**UNSAFE_VALUES, "unsafe": "no"}),
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert "Label corrected." in response.text
    assert f'data-item="{held.pk}"' in response.text  # back on the item held
    second.refresh_from_db()
    assert (second.values["unsafe"], second.revision) == (False, 2)
    edit = AuditEvent.objects.get(action="label_edit")
    assert (edit.details["before"]["unsafe"], edit.details["after"]["unsafe"]) == (True, False)

    invalid = client.post(
        f"{base}/labels/{second.pk}/correct/",
        _post_values({**UNSAFE_VALUES, "unsafe": ""}),
        HTTP_HX_REQUEST="true",
    )
    assert invalid.status_code == 422
    assert 'id="correcting"' in invalid.text
    assert Label.objects.get(pk=second.pk).revision == 2


def test_nobody_undoes_or_corrects_another_annotators_label() -> None:
    setup, _annotator, colleague, (first, _), _ = _labelled_twice()
    client = Client()
    client.force_login(colleague)
    base = f"/annotate/campaigns/{setup.campaign.pk}"
    page = client.get(f"{base}/undo/?before=999999", HTTP_HX_REQUEST="true")
    assert "Nothing earlier to reopen in this session." in page.text
    assert re.search(rf'data-item="{first.item_id}"[^>]*data-label', page.text) is None
    response = client.post(f"{base}/labels/{first.pk}/correct/", _post_values(UNSAFE_VALUES))
    assert response.status_code == 404
    first.refresh_from_db()
    assert (first.values["unsafe"], first.revision) == (False, 1)
