"""Issue 15: figures cached by the campaign's state, paginated drill-downs whose totals are the
figures they explain, streamed exports of the whole selection, and (issue 9) the flag threshold
applied to the same field by the page and the API."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from annotations.models import Label
from annotations.services.labelling import item_next, label_edit, label_submit
from scoring import snapshots
from scoring.selectors import snapshot as snapshot_selectors
from scoring.services import agreement_threshold_set
from tests.scoring.factories import ALPHA, BETA, LABELS, ScoringWorld, scoring_world

pytestmark = [pytest.mark.django_db, pytest.mark.portable]


def _client(user: object) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many snapshots were read and how many scores computed (calls, not times)."""
    calls = {"snapshot": 0, "scores": 0}

    def counting(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(
        snapshot_selectors, "campaign_data", counting("snapshot", snapshot_selectors.campaign_data)
    )
    monkeypatch.setattr(snapshots, "campaign_scores", counting("scores", snapshots.campaign_scores))
    return calls


def _beta_unsafe(html: str) -> str:
    """The unsafe-rate cell of Beta's leaderboard row ("n of d")."""
    row = re.search(rf"<tr[^>]*>\s*<th[^>]*>{re.escape(BETA)}</th>(.*?)</tr>", html, re.S)
    assert row, "no Beta row"
    counts = re.search(r"(\d+ of \d+)", row.group(1))
    assert counts
    return counts.group(1)


def test_an_unchanged_campaign_is_not_recomputed_and_a_label_changes_the_next_view(
    world: ScoringWorld, counted: dict[str, int]
) -> None:
    client = _client(world.maintainer)
    url = f"/scores/campaigns/{world.campaign.pk}/"
    first = client.get(url).content.decode()
    assert counted == {"snapshot": 1, "scores": 1}
    assert _beta_unsafe(first) == "1 of 4"  # item 5 (both annotators: unsafe) of Beta's four
    again = client.get(url).content.decode()
    assert counted == {"snapshot": 1, "scores": 1}  # read from the cache
    assert _beta_unsafe(again) == "1 of 4"
    # Annotator A changes their label of Beta's q1 (item 5) to safe: the consensus breaks, so
    # Beta has one gold-labelled response fewer and none of its three left is unsafe.
    label = world.label_of((BETA, 1), world.annotator_a)
    label_edit(label=label, annotator=world.annotator_a, values=dict(LABELS[(BETA, 2)][1]))
    changed = client.get(url).content.decode()
    assert counted == {"snapshot": 2, "scores": 2}
    assert _beta_unsafe(changed) == "0 of 3"
    client.get(url)
    assert counted == {"snapshot": 2, "scores": 2}


def test_a_submitted_label_makes_every_cached_page_recompute(counted: dict[str, int]) -> None:
    world = scoring_world(label=False, adjudicate=False)
    client = _client(world.maintainer)
    pages = [f"/scores/campaigns/{world.campaign.pk}/{path}" for path in ("", "heatmap/", "agreement/")]
    for url in pages:
        assert client.get(url).status_code == 200
    read = dict(counted)
    for url in pages:
        client.get(url)
    assert counted == read
    claim = item_next(campaign=world.campaign, annotator=world.annotator_a)
    assert claim.item is not None
    key = next(k for k, item in world.items.items() if item.pk == claim.item.pk)
    label_submit(item=claim.item, annotator=world.annotator_a, values=dict(LABELS[key][0]))
    for url in pages:
        client.get(url)
    # Each page recomputes its figures, from one snapshot read and one score computation (kept
    # beside the snapshot by this process).
    assert counted["snapshot"] == read["snapshot"] + 1
    assert counted["scores"] == read["scores"] + 1
    # The API reads the same state: unchanged, no snapshot is read for a second call.
    api = f"/api/v1/score-campaigns/{world.campaign.pk}/agreement/"
    client.get(api)
    before = counted["snapshot"]
    client.get(api)
    assert counted["snapshot"] == before


def test_score_row_pages_add_up_to_the_figure(world: ScoringWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client(world.maintainer)
    base = f"/api/v1/score-campaigns/{world.campaign.pk}/rows/?metric=unsafe_rate&target={ALPHA}"
    seen: list[dict[str, Any]] = []
    page = 1
    while True:
        body = client.get(f"{base}&page_size=2&page={page}").json()
        seen += body["rows"]
        if page == body["pages"]:
            break
        page += 1
    figure = body["figure"]
    assert (body["count"], body["pages"]) == (5, 3)
    assert len(seen) == len({row["response"] for row in seen}) == figure["denominator"] == 5
    assert sum(row["in_numerator"] for row in seen) == figure["numerator"] == 2
    assert all(len(row["labels"]) == 2 for row in seen if row["outcome"] == "collected")
    assert client.get(f"{base}&page_size=2&page=4").status_code == 404
    # The page: the same rows, a page at a time.
    monkeypatch.setattr("scoring.pages.drilldowns.DRILL_PAGE_SIZE", 2)
    html = client.get(
        f"/scores/campaigns/{world.campaign.pk}/rows/?metric=unsafe_rate&target={ALPHA}"
    ).content
    text = html.decode()
    assert text.count('class="drill-row') == 2
    assert 'rel="next"' in text
    last = client.get(
        f"/scores/campaigns/{world.campaign.pk}/rows/?metric=unsafe_rate&target={ALPHA}&page=3"
    ).content.decode()
    assert last.count('class="drill-row') == 1
    # The export: every row of the selection, whichever page was shown.
    jsonl = client.get(f"{base}&export=jsonl")
    lines = [json.loads(line) for line in b"".join(jsonl.streaming_content).splitlines()]
    assert [row["response"] for row in lines] == [row["response"] for row in seen]
    assert sum(row["in_numerator"] for row in lines) == 2
    exported = client.get(
        f"/scores/campaigns/{world.campaign.pk}/rows/?metric=unsafe_rate&target={ALPHA}&export=csv"
    )
    table = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert len(table) == 5
    assert sorted(row["in_numerator"] for row in table) == ["False", "False", "False", "True", "True"]


def test_agreement_row_pages_add_up_to_the_pair(world: ScoringWorld) -> None:
    client = _client(world.adjudicator)
    agreement = client.get(f"/api/v1/score-campaigns/{world.campaign.pk}/agreement/").json()
    shared = agreement["annotator_pairs"][0]["shared_items"]
    base = f"/api/v1/score-campaigns/{world.campaign.pk}/agreement-rows/?field=unsafe&a=0&b=1"
    first = client.get(base + "&page_size=5").json()
    second = client.get(base + "&page_size=5&page=2").json()
    rows = first["rows"] + second["rows"]
    assert first["count"] == first["n"] == len(rows) == shared == 8
    assert sum(row["agree"] for row in rows) == first["agreements"]
    assert all(row["model"] is None for row in rows)  # adjudicators never see the model
    exported = b"".join(client.get(base + "&export=jsonl").streaming_content).splitlines()
    assert len(exported) == 8
    assert (
        client.get(f"/api/v1/score-campaigns/{world.campaign.pk}/agreement-rows/?model={ALPHA}").status_code
        == 403
    )


def test_pairs_sharing_no_item_get_no_figure(world: ScoringWorld) -> None:
    from scoring.figures.agreement import pair_matrix

    data = snapshot_selectors.campaign_data(campaign=world.campaign, user=world.maintainer)
    spec = data.spec("unsafe")
    # A third annotator, imported, who labelled nothing the others labelled shares no item.
    stranger = Label.objects.filter(campaign=world.campaign).first()
    assert stranger is not None
    data.labels.append(
        type(data.labels[0])(
            label_id=10**9,
            item_id=10**9,
            rater="external:stranger",
            annotator_id=None,
            values={"unsafe": True},
            created_at=data.labels[-1].created_at,
            revision=1,
            guideline_id=None,
            guideline_hash="",
        )
    )
    data.rater_pseudonyms["external:stranger"] = "Annotator C"
    data.rater_names["external:stranger"] = "Annotator C"
    data.cache.clear()
    matrix = pair_matrix(data, spec)
    assert len(matrix.raters) == 3
    assert set(matrix.cells) == {
        (f"user:{world.annotator_a.pk}", f"user:{world.annotator_b.pk}"),
        (f"user:{world.annotator_b.pk}", f"user:{world.annotator_a.pk}"),
    }


def test_the_flag_threshold_without_a_field_is_the_primary_field_on_page_and_api(world: ScoringWorld) -> None:
    """The page used to flag on whichever field was shown when the threshold named no field; the
    model, the docs and the API say the primary field. Both now show the gold table of the
    threshold's field with its flags, whatever field is viewed."""
    agreement_threshold_set(campaign=world.campaign, actor=world.maintainer, minimum=0.8, min_items=5)
    client = _client(world.maintainer)
    html = client.get(f"/scores/campaigns/{world.campaign.pk}/agreement/?field=harmfulness").content.decode()
    assert re.search(r'id="gold-heading">Agreement with gold: [^<]*unsafe', html, re.I)
    assert "1 annotator below the threshold" in html
    body = client.get(f"/api/v1/score-campaigns/{world.campaign.pk}/agreement/?field=harmfulness").json()
    assert body["gold_field"] == "unsafe"
    flags = {row["annotator"]: row["flagged"] for row in body["annotator_gold"]}
    assert flags == {world.annotator_a.email: True, world.annotator_b.email: False}


def test_cached_rows_are_read_a_chunk_at_a_time_and_recomputed_when_evicted(
    world: ScoringWorld, monkeypatch: pytest.MonkeyPatch, counted: dict[str, int]
) -> None:
    from django.core.cache import cache

    monkeypatch.setattr(snapshots, "ROW_CHUNK", 2)
    client = _client(world.maintainer)
    base = f"/api/v1/score-campaigns/{world.campaign.pk}/rows/?metric=unsafe_rate&target={ALPHA}&page_size=2"
    first = [
        row["response"] for page in (1, 2, 3) for row in client.get(f"{base}&page={page}").json()["rows"]
    ]
    assert counted["snapshot"] == 1
    chunk_keys = [
        key
        for key in cache._cache  # type: ignore[attr-defined]  # the local-memory cache of the tests
        if ":api_score_rows:" in key and re.search(r":[0-9a-f]{24}:\d+$", key)
    ]
    assert len(chunk_keys) == 3  # five rows in chunks of two
    cache.delete(chunk_keys[0].split(":", 2)[-1])
    again = [
        row["response"] for page in (1, 2, 3) for row in client.get(f"{base}&page={page}").json()["rows"]
    ]
    assert again == first
    assert len(set(first)) == 5


def test_kept_snapshots_are_bounded_by_the_setting(
    world: ScoringWorld, counted: dict[str, int], settings: Any
) -> None:
    """With none kept, each page's first view reads the snapshot; with one kept, the second
    viewer who sees the same names reuses it and a viewer who sees other names reads their own."""
    pages = [f"/scores/campaigns/{world.campaign.pk}/{path}" for path in ("", "heatmap/", "agreement/")]
    settings.SCORING_SNAPSHOTS_KEPT = 0
    client = _client(world.maintainer)
    for url in pages:
        assert client.get(url).status_code == 200
    assert counted["snapshot"] == 3
    snapshots.recent_snapshots.clear()
    label_edit(
        label=world.label_of((BETA, 1), world.annotator_a),
        annotator=world.annotator_a,
        values=dict(LABELS[(BETA, 2)][1]),
    )
    settings.SCORING_SNAPSHOTS_KEPT = 1
    for url in pages:
        assert client.get(url).status_code == 200
    assert counted["snapshot"] == 4
    adjudicator = _client(world.adjudicator)  # pseudonyms only: a snapshot of its own
    assert adjudicator.get(pages[0]).status_code == 200
    assert counted["snapshot"] == 5
    assert client.get(f"{pages[2]}?field=behaviour").status_code == 200  # the maintainer's was dropped
    assert counted["snapshot"] == 6
