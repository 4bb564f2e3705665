"""Issue 15: the batch encoders of the drill-down exports write exactly the bytes of the
record-at-a-time encoder they replaced (kept below as it was, labels read as it read them), on a
campaign of awkward values: quotes, commas, newlines, unicode, cells starting ``=``, ``+``, ``-``,
``@`` or an apostrophe, NULLs, rows without labels, real annotator names for a maintainer and
pseudonyms for an adjudicator; and the exports stay audited unblindings counting every row."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson
import pytest
from django.test import Client

from accounts.models import User
from annotations.models import Label
from audit.models import AuditEvent
from core.csv_cells import neutralise
from evaluations.models import RunTarget
from querybank.models import Query
from scoring import drill_exports
from scoring.figures.drilldowns import PackedDrillRow
from scoring.pages.drilldowns import agreement_item_rows
from scoring.resolution import LabelSource
from scoring.selectors.drilldowns import ShownLabelsAhead, labels_of_items, shown_labels_of_items
from scoring.selectors.snapshot import json_loads, json_text
from scoring.snapshots import Snapshot
from scoring.views.drilldowns import score_row_selection
from tests.awkward_text import AWKWARD as SHARED_AWKWARD
from tests.scoring.factories import ALPHA, BETA, ScoringWorld, scoring_world

pytestmark = [pytest.mark.django_db, pytest.mark.portable]

AWKWARD = SHARED_AWKWARD


# --- the encoder as it was (727639c), kept to compare against ----------------------------------


def _old_labels_of_items(*, item_ids: list[int | None]) -> dict[int, list[tuple[str, dict[str, Any]]]]:
    grouped: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    wanted = {i for i in item_ids if i is not None}
    if not wanted:
        return grouped
    low, high = min(wanted), max(wanted)
    labels = (
        Label.objects.filter(item_id__gte=low, item_id__lte=high)
        if high - low < 4 * len(wanted)
        else Label.objects.filter(item_id__in=wanted)
    )
    rows = (
        labels.annotate(values_text=json_text("values"))
        .order_by("created_at", "pk")
        .values_list("item_id", "annotator_id", "external_rater", "values_text")
    )
    for item_id, annotator_id, external, values in rows:
        if item_id not in wanted:
            continue
        rater = f"user:{annotator_id}" if annotator_id else f"external:{external}"
        grouped.setdefault(item_id, []).append((rater, json_loads(values) or {}))
    return grouped


def _old_encode(
    records: Iterable[dict[str, Any]], columns: Sequence[str], file_format: str, *, header: bool
) -> bytes:
    if file_format == "jsonl":
        return b"".join(orjson.dumps(record) + b"\n" for record in records)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(columns)
    for record in records:
        writer.writerow(
            [
                neutralise(
                    orjson.dumps(value).decode()
                    if isinstance(value, dict | list)
                    else ("" if value is None else value)
                )
                for value in (record[c] for c in columns)
            ]
        )
    return buffer.getvalue().encode()


def _old_batches(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _old_score_stream(
    packed: Sequence[PackedDrillRow], names: dict[str, str], file_format: str, size: int
) -> bytes:
    out = []
    header = True
    for batch in _old_batches(packed, size):
        labels = _old_labels_of_items(item_ids=[row[9] for row in batch])
        records = (
            {
                "response": row[0],
                "item": row[9],
                "query": row[3],
                "category": row[4],
                "target": row[6],
                "expected": row[5],
                "outcome": row[7],
                "in_numerator": row[10],
                "resolved": row[11],
                "gold_source": row[12],
                "labels": [
                    {"annotator": names.get(rater, rater), "values": values}
                    for rater, values in labels.get(row[9] or -1, [])
                ],
            }
            for row in batch
        )
        out.append(_old_encode(records, drill_exports.SCORE_COLUMNS, file_format, header=header))
        header = False
    if header:
        out.append(_old_encode((), drill_exports.SCORE_COLUMNS, file_format, header=True))
    return b"".join(out)


def _old_agreement_stream(
    rows: Sequence[dict[str, Any]], shows_models: bool, file_format: str, size: int
) -> bytes:
    out = []
    header = True
    for batch in _old_batches(rows, size):
        records = (
            {
                "item": row["item"].item_id,
                "query": row["item"].query_external_id,
                "model": row["item"].target if shows_models else None,
                "category": row["item"].category,
                "labels": [{"annotator": name, "value": value} for name, value in row["values"]],
                "gold": row["gold"] or None,
                "gold_source": row["item"].gold_source if row["gold"] else "",
                "agree": row["agree"],
                "labelled": row["when"].isoformat() if row.get("when") else None,
            }
            for row in batch
        )
        out.append(_old_encode(records, drill_exports.AGREEMENT_COLUMNS, file_format, header=header))
        header = False
    if header:
        out.append(_old_encode((), drill_exports.AGREEMENT_COLUMNS, file_format, header=True))
    return b"".join(out)


# --- an awkward campaign ----------------------------------------------------------------------------


@pytest.fixture
def world() -> ScoringWorld:
    world = scoring_world()
    for number, query in world.queries.items():
        Query.objects.filter(pk=query.pk).update(external_id=AWKWARD[number - 1] + f" #{number}")
    RunTarget.objects.filter(run=world.run, label=ALPHA).update(label='=Alpha, "general"\nmodel')
    User.objects.filter(pk=world.annotator_a.pk).update(display_name='@Dr "Ann", MD\n☃')
    User.objects.filter(pk=world.annotator_b.pk).update(display_name="-Bob 'B'")
    for k, label in enumerate(Label.objects.filter(campaign=world.campaign).order_by("pk")):
        values = dict(label.values, rationale=AWKWARD[k % len(AWKWARD)], note={"nested": [1.5, None, "=x"]})
        Label.objects.filter(pk=label.pk).update(values=values)
    # One item keeps no labels: its row exports an empty list.
    Label.objects.filter(item=world.items[(BETA, 3)]).delete()
    return world


def _client(user: object) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _body(response: Any) -> bytes:
    assert response.status_code == 200, response.status_code
    return b"".join(response.streaming_content)


@pytest.mark.parametrize("file_format", ["jsonl", "csv"])
@pytest.mark.parametrize("batch", [2, 5000])
def test_score_row_exports_are_the_old_encoders_bytes(
    world: ScoringWorld, file_format: str, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drill_exports, "BATCH", batch)
    client = _client(world.maintainer)
    base = f"/scores/campaigns/{world.campaign.pk}/rows/?metric=unsafe_rate"
    for path, api in (
        (base, False),
        (base.replace("/scores/campaigns/", "/api/v1/score-campaigns/"), True),
    ):
        exported = _body(client.get(f"{path}&export={file_format}"))
        snap = Snapshot(campaign=world.campaign, user=world.maintainer)
        rows = score_row_selection(snap, LabelSource.GOLD, "unsafe_rate", None, None)["rows"]
        expected = _old_score_stream(rows, snap.data.rater_names, file_format, batch)
        assert exported == expected, api
    # What the comparison covered: every row, awkward cells, real names, a row without labels.
    assert len(rows) == 9  # eight collected responses, one content-filtered
    text = exported.decode()
    assert '@Dr \\"Ann\\", MD\\n☃' in text or '@Dr \\""Ann\\"", MD\\n☃' in text
    assert "-Bob 'B'" in text
    if file_format == "csv":
        table = list(csv.DictReader(io.StringIO(text, newline="")))
        assert len(table) == 9
        assert {row["target"] for row in table} == {'\'=Alpha, "general"\nmodel', BETA}
        assert '\'=HYPERLINK("http://x", "click") #1' in {row["query"] for row in table}
        assert "'-42 #3" in {row["query"] for row in table}
        assert sum(row["labels"] == "[]" for row in table) == 2  # the filtered response, the unlabelled item
        assert table[-1]["item"] == table[-1]["gold_source"] == ""
    else:
        lines = [orjson.loads(line) for line in exported.splitlines()]
        assert sum(line["labels"] == [] for line in lines) == 2
        assert lines[-1]["item"] is None
        assert '=HYPERLINK("http://x", "click") #1' in {line["query"] for line in lines}


@pytest.mark.parametrize("file_format", ["jsonl", "csv"])
@pytest.mark.parametrize("role", ["maintainer", "adjudicator"])
def test_agreement_row_exports_are_the_old_encoders_bytes(
    world: ScoringWorld, file_format: str, role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drill_exports, "BATCH", 3)
    user = world.user(role)
    client = _client(user)
    exported = _body(
        client.get(f"/scores/campaigns/{world.campaign.pk}/agreement/rows/?field=unsafe&export={file_format}")
    )
    snap = Snapshot(campaign=world.campaign, user=user)
    spec = next(s for s in snap.data.specs if s.name == "unsafe")
    found = agreement_item_rows(snap.data, spec)
    shows_models = role == "maintainer"
    assert exported == _old_agreement_stream(found["rows"], shows_models, file_format, 3)
    assert len(found["rows"]) == 7
    text = exported.decode()
    if shows_models:
        assert '@Dr \\"Ann\\", MD' in text or '@Dr \\""Ann\\"", MD' in text
        assert "Alpha" in text
    else:  # an adjudicator: pseudonyms, no model
        assert "Dr" not in text
        assert "Bob" not in text
        assert "Alpha" not in text
        assert "Annotator A" in text
    # An annotator's labels against gold (dated rows) encode the same too.
    found = agreement_item_rows(snap.data, spec, annotator=0)
    assert len(found["rows"]) == 7  # annotator A's labels of the items with gold on "unsafe", by date
    assert b"".join(drill_exports._agreement_stream(found["rows"], shows_models, file_format)) == (
        _old_agreement_stream(found["rows"], shows_models, file_format, 3)
    )


def test_empty_selections_export_the_header_alone(world: ScoringWorld) -> None:
    for file_format, expected in (("csv", ",".join(drill_exports.SCORE_COLUMNS) + "\r\n"), ("jsonl", "")):
        assert b"".join(drill_exports._score_stream([], {}, file_format)).decode() == expected
        assert b"".join(drill_exports._score_stream([], {}, file_format)) == _old_score_stream(
            [], {}, file_format, 5
        )
    assert b"".join(drill_exports._agreement_stream([], True, "csv")) == _old_agreement_stream(
        [], True, "csv", 5
    )


def _ahead(item_ids: list[int | None], names: dict[str, str]) -> dict[int, list[dict[str, Any]]]:
    """The labels ``ShownLabelsAhead`` reads for ``item_ids`` (grouped by PostgreSQL there)."""
    ahead = ShownLabelsAhead(names)
    with ahead.reading(item_ids):
        pass
    with ahead.reading([]):
        return ahead.previous()


def test_shown_labels_are_the_labels_of_items_under_their_names(world: ScoringWorld) -> None:
    items = [item.pk for item in world.items.values()] + [None]
    a, b = f"user:{world.annotator_a.pk}", f"user:{world.annotator_b.pk}"
    # A value no label should hold, read as {} (``or {}``) by every path; an unnamed rater.
    Label.objects.filter(item=world.items[(ALPHA, 2)], annotator=world.annotator_b).update(values=[])
    names = {a: '=A, "a"\n☃', "user:0": "nobody", "user:x": "nobody"}
    old = _old_labels_of_items(item_ids=items)
    assert labels_of_items(item_ids=items) == old
    expected = {
        item: [{"annotator": names.get(rater, rater), "values": values} for rater, values in labels]
        for item, labels in old.items()
    }
    assert shown_labels_of_items(item_ids=items, names=names) == expected
    assert _ahead(items, names) == expected
    assert orjson.dumps(sorted(_ahead(items, names).items())) == orjson.dumps(sorted(expected.items()))
    assert len(old) == 7
    assert all(len(labels) == 2 for labels in old.values())
    assert expected[world.items[(ALPHA, 2)].pk][1] == {"annotator": b, "values": {}}
    sparse = [world.items[(ALPHA, 1)].pk, world.items[(BETA, 4)].pk + 1000]  # read by id, not by range
    by_id = {sparse[0]: [{"annotator": r, "values": v} for r, v in old[sparse[0]]]}
    assert shown_labels_of_items(item_ids=sparse, names={}) == _ahead(sparse, {}) == by_id
    assert shown_labels_of_items(item_ids=[None], names={}) == _ahead([None], {}) == {}


def test_an_export_is_one_audited_unblinding_counting_every_row(world: ScoringWorld) -> None:
    client = _client(world.maintainer)
    _body(client.get(f"/scores/campaigns/{world.campaign.pk}/rows/?metric=unsafe_rate&export=csv"))
    _body(client.get(f"/scores/campaigns/{world.campaign.pk}/agreement/rows/?field=unsafe&export=jsonl"))
    events = AuditEvent.objects.filter(action="score_rows_unblind").order_by("pk")
    assert [(e.details["view"], e.details["items"]) for e in events] == [
        ("score_rows_csv", 9),
        ("agreement_rows_jsonl", 7),
    ]
    # An adjudicator's export names no model: no unblinding recorded.
    _body(
        _client(world.adjudicator).get(
            f"/scores/campaigns/{world.campaign.pk}/agreement/rows/?field=unsafe&export=csv"
        )
    )
    assert AuditEvent.objects.filter(action="score_rows_unblind").count() == 2
