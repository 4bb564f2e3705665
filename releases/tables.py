"""What a release holds: one table spec per table, with its columns and a streaming batch source.

Rows come from ``values_list(...).iterator()`` in batches, so a table is never held whole in
memory. JSON and timestamp columns are cast to text in SQL (no decode and re-encode in Python);
each batch is handed over as columns, ready for Arrow. Annotators and adjudicators appear under
per-release pseudonyms.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import F, QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast

from annotations.models import Adjudication, CampaignItem, Guideline, Label, Rubric, RubricField
from evaluations.models import ModelResponse
from querybank.models import Query
from releases.arrow_values import from_pylist, string_scalar
from releases.models import Release, Tier

CHUNK = 5000  # rows per fetch of the portable (SQLite) path
PAGE = 25_000  # rows per COPY on PostgreSQL: the CSV of one page (and of the next) is held


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "text", "int", "float", "bool"

    @property
    def arrow_type(self) -> pa.DataType:
        return {"text": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}[self.kind]

    @property
    def croissant_type(self) -> str:
        return {"text": "sc:Text", "int": "sc:Integer", "float": "sc:Float", "bool": "sc:Boolean"}[self.kind]


@dataclass(frozen=True)
class TableSpec:
    name: str
    description: str
    columns: tuple[Column, ...]
    tiers: tuple[str, ...]
    count: Callable[[], int]
    batches: Callable[[int], Iterator[pa.RecordBatch]]  # batch size -> batches with ``schema``

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([(c.name, c.arrow_type) for c in self.columns])


def _cols(spec: str) -> tuple[Column, ...]:
    """``"id:int query_id:int text"`` → columns (text when no kind is given)."""
    out = []
    for part in spec.split():
        name, _, kind = part.partition(":")
        out.append(Column(name, kind or "text"))
    return tuple(out)


def _text(expression: Any) -> Cast:
    return Cast(expression, output_field=TextField())


class Pseudonyms:
    """Per-release rater names: an HMAC of the release and the user, computed once per user."""

    def __init__(self, release: Release) -> None:
        self.key = settings.SECRET_KEY.encode()
        self.slug = release.slug
        self.cache: dict[int, str] = {}

    def __call__(self, user_id: int | None) -> str | None:
        if user_id is None:
            return None
        name = self.cache.get(user_id)
        if name is None:
            digest = hmac.new(self.key, f"{self.slug}:{user_id}".encode(), hashlib.sha256).hexdigest()
            name = self.cache[user_id] = "rater-" + digest[:12]
        return name


def _arrow_column(values: Sequence[Any] | pa.Array, kind: str) -> pa.Array:
    arrow_type = _ARROW[kind]
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values if values.type == arrow_type else values.cast(arrow_type)
    return from_pylist(values, arrow_type)


_ARROW = {"text": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}


def _last_key(page_csv: pa.Buffer) -> int | None:
    """The key of a CSV page's last row: its last field (``release__pk``, the last column, an
    integer PostgreSQL never quotes), read from the bytes before they are parsed. None for a page
    of the header alone."""
    tail = memoryview(page_csv)[-64:].tobytes().rstrip(b"\r\n")
    field = tail.rsplit(b",", 1)[-1]
    return int(field) if field.isdigit() else None


def _copy_pages(qs: QuerySet, aliases: dict[str, str], page: int | None) -> Iterator[pa.RecordBatch]:
    """PostgreSQL: ``COPY (SELECT ...) TO STDOUT`` a page at a time, parsed by Arrow's CSV reader.

    Rows never become Python objects: the server writes CSV, Arrow parses it in C into columns,
    a batch per block of CSV (1 MiB; the batches, hence the Parquet row groups, are the ones this
    reader has always made). Pages follow the primary key (keyset), so each one starts where the
    last ended without OFFSET. While the caller writes a page's batches, the next page is read by
    a helper thread on the same connection (psycopg serialises its use: a progress update waits
    for that COPY to end), so PostgreSQL producing rows and this process encoding them overlap.
    A page's CSV is gathered in an Arrow buffer (Arrow's pool gives it back when it is dropped; a
    Python bytearray of a page left glibc's heap holding about 20 MB). ``page=None``: the whole
    queryset at once (a small table, or one not ordered by its key).
    """
    import psycopg
    import pyarrow.csv as pa_csv

    connection = connections[qs.db]
    connection.ensure_connection()
    raw = connection.connection
    types = {alias: _ARROW[kind] for alias, kind in aliases.items()}
    convert = pa_csv.ConvertOptions(
        column_types=types,
        # PostgreSQL's CSV writes NULL as an empty unquoted field and "" as a quoted one.
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=["t"],
        false_values=["f"],
    )
    parse = pa_csv.ParseOptions(newlines_in_values=True)
    read = pa_csv.ReadOptions(use_threads=False)

    def statement(last: int | None) -> str | None:
        chunk = qs if last is None else qs.filter(pk__gt=last)
        if page is not None:
            chunk = chunk[:page]
        try:
            sql, params = chunk.query.get_compiler(using=qs.db).as_sql()
        except EmptyResultSet:  # ``pk__in=[]``: Django knows there is nothing to ask for
            return None
        select = psycopg.ClientCursor(raw).mogrify(sql, params)
        return f"COPY ({select}) TO STDOUT WITH (FORMAT csv, HEADER true)"

    def fetch(copy_sql: str | None) -> pa.Buffer | None:
        if copy_sql is None:
            return None
        sink = pa.BufferOutputStream()
        with raw.cursor() as cursor, cursor.copy(copy_sql) as copy:
            rows = iter(copy)  # one CSV line per item: joined 256 at a time (below glibc's mmap size)
            while part := list(islice(rows, 256)):
                sink.write(b"".join(part))
        return sink.getvalue()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="release-copy") as reader:
        buffer = fetch(statement(None))
        while buffer is not None and buffer.size:
            following = None
            if page is not None and (last := _last_key(buffer)) is not None:
                following = reader.submit(fetch, statement(last))
            rows = 0
            parsed_last = None
            for batch in pa_csv.open_csv(
                buffer, read_options=read, parse_options=parse, convert_options=convert
            ):
                if batch.num_rows and page is not None:
                    parsed_last = batch.column("release__pk")[-1].as_py()
                rows += batch.num_rows
                yield batch
            del buffer
            if following is None:
                return
            if parsed_last != last:  # the next page was asked from the wrong key: never go on
                following.result()  # the connection is free once it is done
                raise RuntimeError("a COPY page's last key, read from its bytes, is not its last row's")
            buffer = following.result()  # read anyway: the connection is free once it is done
            if page is None or rows < page:
                return


def _use_copy(alias: str) -> bool:
    """COPY on PostgreSQL; elsewhere (SQLite, the portable path) Django's cursor."""
    return connections[alias].vendor == "postgresql"


def _kinds(select: dict[str, Any], columns: tuple[Column, ...], **extra: str) -> dict[str, tuple[Any, str]]:
    """``select`` with each raw column's kind: the output column's, or ``extra``'s for a raw one."""
    by_name = {c.name: c.kind for c in columns}
    return {name: (value, extra.get(name) or by_name[name]) for name, value in select.items()}


def _query_batches(
    qs: QuerySet,
    select: dict[str, tuple[Any, str]],
    derive: Callable[[dict[str, pa.Array]], None] | None,
    columns: tuple[Column, ...],
) -> Callable[[int], Iterator[pa.RecordBatch]]:
    """Batches of ``columns`` from ``qs``; ``select`` maps a raw name to (field path or expression,
    kind). Every raw column is an aliased annotation (``release_<name>``): a column may share its
    name with a model field ("values"), and the alias names it in the SQL and the CSV header alike."""
    expressions = {
        f"release_{name}": F(value) if isinstance(value, str) else value
        for name, (value, _) in select.items()
    }
    kinds = {f"release_{name}": kind for name, (_, kind) in select.items()}
    keyset = list(qs.query.order_by) == ["pk"]
    if keyset:
        expressions["release__pk"] = F("pk")
        kinds["release__pk"] = "int"
    schema = pa.schema([(c.name, c.arrow_type) for c in columns])

    def finish(raw: dict[str, pa.Array]) -> pa.RecordBatch:
        if derive is not None:
            derive(raw)
        return pa.RecordBatch.from_arrays(
            [_arrow_column(raw[c.name], c.kind) for c in columns], schema=schema
        )

    def batches(size: int) -> Iterator[pa.RecordBatch]:
        annotated = qs.annotate(**expressions)
        if _use_copy(qs.db):
            values = annotated.values_list(*expressions)
            for batch in _copy_pages(values, kinds, PAGE if keyset else None):
                raw = {name.removeprefix("release_"): batch.column(name) for name in batch.schema.names}
                for start in range(0, batch.num_rows, size):
                    yield finish({name: array.slice(start, size) for name, array in raw.items()})
            return
        rows = annotated.values_list(*expressions).iterator(chunk_size=CHUNK)
        names = list(expressions)
        while chunk := list(islice(rows, size)):
            raw = {
                name.removeprefix("release_"): _arrow_column(values, kinds[name])
                for name, values in zip(names, zip(*chunk, strict=True), strict=True)
            }
            yield finish(raw)

    return batches


def _memory_batches(
    rows: list[dict[str, Any]], columns: tuple[Column, ...]
) -> Callable[[int], Iterator[pa.RecordBatch]]:
    schema = pa.schema([(c.name, c.arrow_type) for c in columns])

    def batches(size: int) -> Iterator[pa.RecordBatch]:
        for start in range(0, len(rows), size):
            part = rows[start : start + size]
            yield pa.RecordBatch.from_arrays(
                [_arrow_column([row.get(c.name) for row in part], c.kind) for c in columns], schema=schema
            )

    return batches


class PseudonymColumn:
    """Arrow twin of ``Pseudonyms``: names each distinct id of a batch once, then takes them."""

    def __init__(self, pseudonym: Pseudonyms) -> None:
        self.pseudonym = pseudonym

    def __call__(self, ids: pa.Array) -> pa.Array:
        distinct = pc.unique(ids).drop_null()
        names = from_pylist([self.pseudonym(i) for i in distinct.to_pylist()], pa.string())
        return pc.take(names, pc.index_in(ids, value_set=distinct))


JUDGE_LABEL_SOURCE = "machine: LLM judge"


def judge_label_rows(response_ids: set[int]) -> list[dict[str, Any]]:
    """Trusted judge labels of these responses, one row per (response, field): the judge, the
    template version it ran, the field and value, and the audit that made it trusted.

    Read through the scores' extension point (``scoring.judges``), where the judging app (above
    this one) registers its reader; without it there are no judge labels. Held in memory: one value
    per response and trusted field, far fewer rows than the clinicians' labels.
    """
    from scoring.judges import judge_readers

    readers = judge_readers()
    if readers is None or not response_ids:
        return []
    labels, uses = readers.trusted_labels(response_ids=response_ids)
    by_field = {use.field: use.trust for use in uses}
    queries = dict(ModelResponse.objects.filter(pk__in=list(labels)).values_list("pk", "query_id"))
    rows: list[dict[str, Any]] = []
    for response_id in sorted(labels):
        for field_name, value in sorted(labels[response_id].items()):
            trust = by_field.get(field_name)
            if trust is None:
                continue
            rows.append(
                {
                    "response_id": response_id,
                    "query_id": queries.get(response_id),
                    # An imported judge has no platform judge row and no template.
                    "judge": trust.judge_name,
                    "judge_slug": trust.judge.slug if trust.judge is not None else None,
                    "template": trust.template.slug if trust.template is not None else None,
                    "template_version": trust.template.version if trust.template is not None else None,
                    "template_sha256": trust.template_hash,
                    "field": field_name,
                    "value": json.dumps(value),
                    "label_source": JUDGE_LABEL_SOURCE,
                    "judge_run_id": trust.judge_run_id,
                    "trust_kappa": trust.kappa,
                    "trust_items": trust.n_items,
                    "trusted_at": trust.granted_at.isoformat(),
                }
            )
    return rows


def table_specs(
    release: Release, *, score_rows: list[dict[str, Any]], sample_ids: list[int]
) -> list[TableSpec]:
    campaign_ids = list(release.campaigns.values_list("pk", flat=True))
    items = CampaignItem.objects.filter(campaign_id__in=campaign_ids).order_by("pk")
    queries = Query.objects.filter(pk__in=items.values("query_id")).order_by("pk")
    responses = ModelResponse.objects.filter(pk__in=items.values("response_id")).order_by("pk")
    labels = Label.objects.filter(campaign_id__in=campaign_ids).order_by("pk")
    adjudications = Adjudication.objects.filter(item__campaign_id__in=campaign_ids).order_by("pk")
    rubric_ids = set(labels.order_by().values_list("rubric_id", flat=True).distinct()) | set(
        release.campaigns.values_list("rubric_id", flat=True)
    )
    fields = RubricField.objects.filter(rubric_id__in=rubric_ids).order_by(
        "rubric__slug", "rubric__version", "position", "pk"
    )
    pseudonyms = PseudonymColumn(Pseudonyms(release))
    both = (Tier.PUBLIC, Tier.RESTRICTED)
    restricted = (Tier.RESTRICTED,)

    query_cols = _cols("query_id:int external_id text category taxonomy expected_behaviour severity source")
    query_select = {
        "query_id": "pk",
        "external_id": "external_id",
        "text": "text",
        "category": "category__slug",
        "taxonomy": "category__taxonomy__slug",
        "expected_behaviour": "expected_behaviour",
        "severity": "severity",
        "source": "source",
    }
    response_cols = _cols(
        "response_id:int query_id:int run_id:int run_name target model_name resolved_model sample_index:int "
        "outcome text finish_reason request raw_reply input_guard output_guard target_config "
        "input_tokens:int output_tokens:int latency_ms:int finished_at"
    )
    response_select = {
        "response_id": "pk",
        "query_id": "query_id",
        "run_id": "run_id",
        "run_name": "run__name",
        "target": "target__label",
        "model_name": KeyTextTransform("model_name", KeyTransform("model", "target__config")),
        "resolved_model": "resolved_model",
        "sample_index": "sample_index",
        "outcome": "outcome",
        "text": "text",
        "finish_reason": "finish_reason",
        "request": _text("request"),
        "raw_reply": _text("raw_reply"),
        "input_guard": _text("input_guard"),
        "output_guard": _text("output_guard"),
        "target_config": _text("target__config"),
        "input_tokens": "input_tokens",
        "output_tokens": "output_tokens",
        "latency_ms": "latency_ms",
        "finished_at": _text("finished_at"),
    }
    item_cols = _cols(
        "item_id:int campaign_id:int query_id:int response_id:int required_labels:int label_count:int "
        "agreement:float disputed:bool gold_values gold_source"
    )
    item_select = {
        "item_id": "pk",
        "campaign_id": "campaign_id",
        "query_id": "query_id",
        "response_id": "response_id",
        "required_labels": "required_labels",
        "label_count": "label_count",
        "agreement": "agreement",
        "disputed": "disputed",
        "gold_values": _text("gold_values"),
        "gold_source": "gold_source",
    }
    label_cols = _cols(
        "label_id:int campaign_id:int item_id:int query_id:int response_id:int rater rubric "
        "rubric_version:int guideline_version:int guideline_sha256 values revision:int created_at"
    )
    label_select = {
        "label_id": "pk",
        "campaign_id": "campaign_id",
        "item_id": "item_id",
        "query_id": "item__query_id",
        "response_id": "item__response_id",
        "annotator_id": "annotator_id",
        "external_rater": "external_rater",
        "rubric": "rubric__slug",
        "rubric_version": "rubric__version",
        "guideline_version": "guideline__version",
        "guideline_sha256": "guideline_hash",
        "values": _text("values"),
        "revision": "revision",
        "created_at": _text("created_at"),
    }

    def label_raters(raw: dict[str, pa.Array]) -> None:
        empty = string_scalar("")
        external = pc.binary_join_element_wise(
            string_scalar("external:"), pc.fill_null(raw["external_rater"], empty), empty
        )
        raw["rater"] = pc.if_else(pc.is_null(raw["annotator_id"]), external, pseudonyms(raw["annotator_id"]))

    adjudication_cols = _cols(
        "adjudication_id:int item_id:int campaign_id:int adjudicator values rationale rubric "
        "rubric_version:int guideline_version:int guideline_sha256 supersedes_id:int imported:bool created_at"
    )
    adjudication_select = {
        "adjudication_id": "pk",
        "item_id": "item_id",
        "campaign_id": "item__campaign_id",
        "adjudicator_id": "adjudicator_id",
        "values": _text("values"),
        "rationale": "rationale",
        "rubric": "rubric__slug",
        "rubric_version": "rubric__version",
        "guideline_version": "guideline__version",
        "guideline_sha256": "guideline_hash",
        "supersedes_id": "supersedes_id",
        "imported": "imported",
        "created_at": _text("created_at"),
    }

    def adjudicators(raw: dict[str, pa.Array]) -> None:
        raw["adjudicator"] = pseudonyms(raw["adjudicator_id"])

    field_cols = _cols(
        "rubric rubric_version:int rubric_sha256 field label kind required:bool primary:bool options "
        "options_source help_text"
    )
    field_select = {
        "rubric": "rubric__slug",
        "rubric_version": "rubric__version",
        "rubric_sha256": "rubric__content_hash",
        "field": "name",
        "label": "label",
        "kind": "kind",
        "required": "required",
        "primary": "primary",
        "options": _text("options"),
        "options_source": "options_source",
        "help_text": "help_text",
    }
    judge_cols = _cols(
        "response_id:int query_id:int judge judge_slug template template_version:int template_sha256 field "
        "value label_source judge_run_id:int trust_kappa:float trust_items:int trusted_at"
    )
    response_ids = set(
        items.filter(response__isnull=False).order_by().values_list("response_id", flat=True).distinct()
    )
    judge_rows = judge_label_rows(response_ids)
    score_cols = _cols(
        "campaign_id:int target category metric value:float ci_low:float ci_high:float numerator:float "
        "denominator:float interval note"
    )
    sample = queries.filter(pk__in=sample_ids)
    return [
        TableSpec(
            "scores",
            "Safety scores per campaign, target and category with 95% intervals (gold labels).",
            score_cols,
            both,
            lambda: len(score_rows),
            _memory_batches(score_rows, score_cols),
        ),
        TableSpec(
            "rubric_fields",
            "The fields of every rubric version the labels were made under.",
            field_cols,
            both,
            fields.count,
            _query_batches(fields, _kinds(field_select, field_cols), None, field_cols),
        ),
        TableSpec(
            "sample",
            "Queries picked by the maintainer and approved by the data committee.",
            query_cols,
            (Tier.PUBLIC,),
            sample.count,
            _query_batches(sample, _kinds(query_select, query_cols), None, query_cols),
        ),
        TableSpec(
            "queries",
            "Every query of the released campaigns.",
            query_cols,
            restricted,
            queries.count,
            _query_batches(queries, _kinds(query_select, query_cols), None, query_cols),
        ),
        TableSpec(
            "responses",
            "Model responses with their provenance: run, target, request and raw reply.",
            response_cols,
            restricted,
            responses.count,
            _query_batches(responses, _kinds(response_select, response_cols), None, response_cols),
        ),
        TableSpec(
            "items",
            "Campaign items with their gold values and agreement.",
            item_cols,
            restricted,
            items.count,
            _query_batches(items, _kinds(item_select, item_cols), None, item_cols),
        ),
        TableSpec(
            "labels",
            "Clinicians' labels, each stamped with its rubric and guideline version.",
            label_cols,
            restricted,
            labels.count,
            _query_batches(
                labels,
                _kinds(label_select, label_cols, annotator_id="int", external_rater="text"),
                label_raters,
                label_cols,
            ),
        ),
        TableSpec(
            "adjudications",
            "Adjudicated gold labels with their rationale (history included).",
            adjudication_cols,
            restricted,
            adjudications.count,
            _query_batches(
                adjudications,
                _kinds(adjudication_select, adjudication_cols, adjudicator_id="int"),
                adjudicators,
                adjudication_cols,
            ),
        ),
        TableSpec(
            "judge_labels",
            "MACHINE LABELS, not clinicians': values of LLM judges trusted for a field after a "
            "judge-versus-clinician audit (judge, template version, field, value, the audit's kappa). "
            "Every row's label_source says so; use the labels and adjudications tables for human labels.",
            judge_cols,
            restricted,
            lambda: len(judge_rows),
            _memory_batches(judge_rows, judge_cols),
        ),
    ]


def guidelines_of(release: Release) -> list[Guideline]:
    campaign_ids = list(release.campaigns.values_list("pk", flat=True))
    ids = set(release.campaigns.values_list("guideline_id", flat=True)) | set(
        Label.objects.filter(campaign_id__in=campaign_ids, guideline__isnull=False)
        .order_by()  # no ordering column in the DISTINCT: one row per guideline, not per label
        .values_list("guideline_id", flat=True)
        .distinct()
    )
    return list(Guideline.objects.filter(pk__in=ids).order_by("slug", "version"))


def rubrics_of(release: Release) -> list[Rubric]:
    return list(
        Rubric.objects.filter(pk__in=release.campaigns.values("rubric_id")).order_by("slug", "version")
    )
