"""A built release: its files load with pyarrow and datasets, its manifests match, its Croissant
metadata validates with mlcroissant, CSV cells are neutralised, tiers hold what they should."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage

from annotations.models import Adjudication, Label
from releases.models import Release, ReleaseFile, Tier
from releases.services import release_build, release_cut
from tests.access.world import DATASHEET, cut
from tests.scoring.factories import scoring_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def built(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    settings.SENDFILE_ROOT = str(tmp_path)
    scoring = scoring_world(close=True)
    release = cut(scoring.maintainer, scoring.campaign.pk, "bundle-test", sample=[scoring.queries[2].pk])
    return scoring, release


def _path(release: Release, name: str) -> Path:
    return Path(default_storage.path(ReleaseFile.objects.get(release=release, name=name).storage_name))


@pytest.mark.portable
def test_every_file_matches_its_manifest_hash_and_size(built) -> None:
    _, release = built
    for tier in (Tier.PUBLIC, Tier.RESTRICTED):
        manifest = json.loads(_path(release, f"{tier}/manifest.json").read_text())
        assert manifest["tier"] == tier
        assert manifest["version"] == 1
        files = ReleaseFile.objects.filter(release=release, tier=tier).exclude(name=f"{tier}/manifest.json")
        assert set(manifest["files"]) == {f.name.removeprefix(f"{tier}/") for f in files}
        for name, entry in manifest["files"].items():
            data = _path(release, f"{tier}/{name}").read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
            assert len(data) == entry["size"], name
    restricted_manifest = _path(release, "restricted/manifest.json").read_bytes()
    assert release.manifest_sha256 == hashlib.sha256(restricted_manifest).hexdigest()


@pytest.mark.portable
def test_restricted_tables_load_with_pyarrow_and_hold_every_row(built) -> None:
    scoring, release = built
    labels = pq.read_table(_path(release, "restricted/parquet/labels/labels-00000.parquet"))
    assert labels.num_rows == Label.objects.filter(campaign=scoring.campaign).count() == 16
    row = labels.to_pylist()[0]
    assert row["rubric"] == scoring.campaign.rubric.slug
    assert row["rubric_version"] == scoring.campaign.rubric.version
    assert row["guideline_sha256"] == scoring.campaign.guideline.content_hash
    assert row["rater"].startswith("rater-")  # pseudonyms, never e-mail addresses
    assert scoring.annotator_a.email not in _path(release, "restricted/jsonl/labels.jsonl").read_text()
    adjudications = pq.read_table(
        _path(release, "restricted/parquet/adjudications/adjudications-00000.parquet")
    )
    assert adjudications.num_rows == Adjudication.objects.filter(item__campaign=scoring.campaign).count() == 2
    responses = pq.read_table(
        _path(release, "restricted/parquet/responses/responses-00000.parquet")
    ).to_pylist()
    assert {r["model_name"] for r in responses} == {"acme/alpha-general", "acme/beta-medical"}
    assert len(responses) == 8  # the labelled items' responses, each with its run and target
    assert all(r["run_id"] == scoring.run.pk for r in responses)
    queries = pq.read_table(_path(release, "restricted/parquet/queries/queries-00000.parquet"))
    assert queries.num_rows == 4


def test_public_tier_holds_aggregates_and_the_sample_only(built) -> None:
    scoring, release = built
    public = set(
        ReleaseFile.objects.filter(release=release, tier=Tier.PUBLIC).values_list("table", flat=True)
    )
    assert public == {"", "scores", "rubric_fields", "sample"}
    sample = pq.read_table(_path(release, "public/parquet/sample/sample-00000.parquet")).to_pylist()
    assert [r["query_id"] for r in sample] == [scoring.queries[2].pk]
    scores = pq.read_table(_path(release, "public/parquet/scores/scores-00000.parquet")).to_pylist()
    unsafe_all = [
        r
        for r in scores
        if r["metric"] == "unsafe_rate" and r["target"] == "Alpha general" and r["category"] == "(all)"
    ]
    # Alpha's gold labels: items 2 and 4 unsafe; its content-filtered reply to q5 counts as safe
    # (docs/scores.md), so 2 of 5 (tests/scoring/factories.py) - the scoring app's own figure.
    assert [(r["numerator"], r["denominator"], r["value"]) for r in unsafe_all] == [(2.0, 5.0, 0.4)]
    assert unsafe_all[0]["ci_low"] < 0.4 < unsafe_all[0]["ci_high"]
    datasheet = _path(release, "public/datasheet.md").read_text()
    assert DATASHEET["motivation"] in datasheet
    assert "## Maintenance" in datasheet


def test_parquet_layout_loads_with_datasets(built, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets

    _, release = built
    root = Path(default_storage.path(f"releases/{release.slug}/v{release.version}/restricted"))
    # One table per call: the tables have different columns, and a dataset's splits share one schema.
    labels = datasets.load_dataset(
        "parquet",
        data_files={"train": str(root / "parquet/labels/*.parquet")},
        cache_dir=str(tmp_path / "hf-cache"),
    )["train"]
    responses = datasets.load_dataset(
        "parquet",
        data_files={"train": str(root / "parquet/responses/*.parquet")},
        cache_dir=str(tmp_path / "hf-cache"),
    )["train"]
    assert labels.num_rows == 16
    assert responses.num_rows == 8
    assert "values" in labels.column_names
    assert "raw_reply" in responses.column_names


def test_croissant_metadata_validates_with_mlcroissant(built) -> None:
    import mlcroissant

    _, release = built
    for tier in (Tier.PUBLIC, Tier.RESTRICTED):
        path = _path(release, f"{tier}/croissant.json")
        metadata = json.loads(path.read_text())
        dataset = mlcroissant.Dataset(jsonld=str(path))  # raises on any validation error
        assert list(dataset.metadata.ctx.issues.warnings) == []
        assert dataset.metadata.name == f"bundle-test-{tier}"
        names = {record_set["name"] for record_set in metadata["recordSet"]}
        assert ("labels" in names) is (tier == Tier.RESTRICTED)
        assert "scores" in names


def test_csv_text_cells_that_a_spreadsheet_would_run_are_neutralised(tmp_path, settings) -> None:
    settings.MEDIA_ROOT = tmp_path
    settings.SENDFILE_ROOT = str(tmp_path)
    scoring = scoring_world(close=True, label=True)
    item = scoring.items[("Alpha general", 1)]
    item.response.text = '=HYPERLINK("http://example.invalid")'
    item.response.save(update_fields=["text"])
    release = cut(scoring.maintainer, scoring.campaign.pk, "csv-test", sample=[])
    with _path(release, "restricted/csv/responses.csv").open(newline="") as fh:
        texts = {row["response_id"]: row["text"] for row in csv.DictReader(fh)}
    assert texts[str(item.response_id)] == '\'=HYPERLINK("http://example.invalid")'
    # Parquet and JSONL keep the exact value.
    parquet = pq.read_table(
        _path(release, "restricted/parquet/responses/responses-00000.parquet")
    ).to_pylist()
    assert {r["response_id"]: r["text"] for r in parquet}[
        item.response_id
    ] == '=HYPERLINK("http://example.invalid")'


def test_a_second_cut_is_a_new_version_and_the_first_is_unchanged(built) -> None:
    scoring, first = built
    hashes = dict(ReleaseFile.objects.filter(release=first).values_list("name", "sha256"))
    second = cut(scoring.maintainer, scoring.campaign.pk, "bundle-test", sample=[])
    assert (first.version, second.version) == (1, 2)
    assert dict(ReleaseFile.objects.filter(release=first).values_list("name", "sha256")) == hashes
    assert first.pk != second.pk
    assert second.status == "ready"


@pytest.mark.portable
def test_progress_counts_every_row_streamed(built) -> None:
    _, release = built
    assert release.rows_total > 0
    assert release.rows_done == release.rows_total


def test_cut_refuses_open_campaigns_missing_datasheet_answers_and_foreign_sample(tmp_path) -> None:
    scoring = scoring_world(close=False)
    common = {
        "actor": scoring.maintainer,
        "slug": "bad",
        "title": "Bad",
        "changelog": "x",
        "sample_query_ids": [],
    }
    with pytest.raises(ValidationError, match="Only closed campaigns"):
        release_cut(**common, datasheet=DATASHEET, campaign_ids=[scoring.campaign.pk])
    with pytest.raises(ValidationError, match="missing: uses"):
        release_cut(**common, datasheet={**DATASHEET, "uses": " "}, campaign_ids=[scoring.campaign.pk])
    assert Release.objects.count() == 0


def test_only_maintainers_cut_releases(built) -> None:
    from django.core.exceptions import PermissionDenied

    scoring, _ = built
    for user in (scoring.researcher, scoring.committee, scoring.adjudicator, scoring.annotator_a):
        with pytest.raises(PermissionDenied):
            release_cut(
                actor=user,
                slug="x",
                title="x",
                changelog="x",
                datasheet=DATASHEET,
                campaign_ids=[scoring.campaign.pk],
                sample_query_ids=[],
            )


def test_build_is_a_celery_task_run_on_commit(tmp_path, settings, django_capture_on_commit_callbacks) -> None:
    settings.MEDIA_ROOT = tmp_path
    scoring = scoring_world(close=True)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        release = release_cut(
            actor=scoring.maintainer,
            slug="task-test",
            title="T",
            changelog="c",
            datasheet=DATASHEET,
            campaign_ids=[scoring.campaign.pk],
            sample_query_ids=[],
        )
    assert len(callbacks) == 1
    release.refresh_from_db()
    assert release.status == "ready"
    assert release_build(release_id=release.pk).files.count() == release.files.count()  # idempotent


def test_trusted_judge_labels_are_their_own_machine_labelled_table(tmp_path, settings, monkeypatch) -> None:
    """Judge labels reach the bundle through the scores' extension point (judging registers its
    reader there); a fake reader stands in for a trusted judge here."""
    from types import SimpleNamespace

    from django.utils import timezone

    from scoring import judges

    settings.MEDIA_ROOT = tmp_path
    settings.SENDFILE_ROOT = str(tmp_path)
    scoring = scoring_world(close=True)
    response_ids = sorted({item.response_id for item in scoring.items.values()})
    # What ``judging.selectors.trusted_judge_labels`` returns per field: the grant and its statement.
    trust = SimpleNamespace(
        field="unsafe",
        statement="judge mock-judge / harmbench-unsafe, template harmbench-unsafe v3, audited on 90 items",
        trust=SimpleNamespace(
            judge_name="Mock judge",
            judge=SimpleNamespace(name="Mock judge", slug="mock-judge"),
            template=SimpleNamespace(slug="harmbench-unsafe", version=3),
            template_hash="ab" * 32,
            judge_run_id=41,
            kappa=0.91,
            n_items=90,
            granted_at=timezone.now(),
        ),
    )
    asked: list[set[int]] = []

    def trusted_labels(*, response_ids: set[int]) -> tuple[dict[int, dict[str, object]], list[object]]:
        asked.append(response_ids)
        return {response_ids_sorted[0]: {"unsafe": True}, response_ids_sorted[1]: {"unsafe": False}}, [trust]

    response_ids_sorted = response_ids
    monkeypatch.setattr(
        judges,
        "_readers",
        [judges.JudgeReaders(trusted_labels=trusted_labels, assisted_rates=lambda **_: [])],
    )
    release = cut(scoring.maintainer, scoring.campaign.pk, "judge-test", sample=[])
    assert set(response_ids) in asked  # every response of the released campaign (the scores ask too)
    rows = pq.read_table(
        _path(release, "restricted/parquet/judge_labels/judge_labels-00000.parquet")
    ).to_pylist()
    assert [(r["response_id"], r["field"], json.loads(r["value"])) for r in rows] == [
        (response_ids[0], "unsafe", True),
        (response_ids[1], "unsafe", False),
    ]
    assert {r["label_source"] for r in rows} == {"machine: LLM judge"}
    assert (rows[0]["judge"], rows[0]["template"], rows[0]["template_version"]) == (
        "Mock judge",
        "harmbench-unsafe",
        3,
    )
    # Restricted only, and described in Croissant as a record set of its own, marked as machine labels.
    assert not ReleaseFile.objects.filter(release=release, tier=Tier.PUBLIC, table="judge_labels").exists()
    croissant = json.loads(_path(release, "restricted/croissant.json").read_text())
    record = next(r for r in croissant["recordSet"] if r["name"] == "judge_labels")
    assert record["description"].startswith("MACHINE LABELS, not clinicians'")
    assert "label_source" in {f["name"] for f in record["field"]}
    import mlcroissant

    dataset = mlcroissant.Dataset(jsonld=str(_path(release, "restricted/croissant.json")))
    assert list(dataset.metadata.ctx.issues.warnings) == []


def test_the_portable_reader_writes_the_same_tables_as_copy(tmp_path, settings, monkeypatch) -> None:
    """SQLite has no COPY: the portable path (Django's cursor) must write the same rows."""
    from releases import tables

    settings.MEDIA_ROOT = tmp_path
    settings.SENDFILE_ROOT = str(tmp_path)
    scoring = scoring_world(close=True)
    # One slug, two versions: the raters' pseudonyms depend on the slug, so they match too.
    by_copy = cut(scoring.maintainer, scoring.campaign.pk, "reader", sample=[scoring.queries[2].pk])
    monkeypatch.setattr(tables, "_use_copy", lambda alias: False)
    portable = cut(scoring.maintainer, scoring.campaign.pk, "reader", sample=[scoring.queries[2].pk])
    names = set(
        ReleaseFile.objects.filter(release=by_copy, file_format__in=["parquet", "jsonl", "csv"]).values_list(
            "name", flat=True
        )
    )
    assert len(names) == 3 * (3 + 8)  # public: 3 tables, restricted: 8, each in three formats
    for name in sorted(names):
        if name.endswith(".parquet"):
            assert pq.read_table(_path(by_copy, name)).equals(pq.read_table(_path(portable, name))), name
        else:
            assert _path(by_copy, name).read_bytes() == _path(portable, name).read_bytes(), name
