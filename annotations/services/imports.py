"""Importing another tool's responses and human labels as a closed campaign, all or nothing.

Each model becomes an inactive registry endpoint (reused by later imports of the same name), the
file a completed collection run, each prompt a query of the import's source, each item a
response, each rater an external rater on the labels, and each adjudicated value an imported
gold decision. The result can be scored and compared like any campaign of the platform.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.policy import can_import_annotations, require
from annotations.importers import (
    AnnotationImportRejected,
    ImportProblem,
    ImportRow,
    ImportRules,
    read_annotation_files,
)
from annotations.judges import JudgeLabel, judge_label_writer
from annotations.models import (
    Adjudication,
    Campaign,
    CampaignItem,
    CampaignStatus,
    GoldSource,
    Guideline,
    Label,
    Rubric,
    RubricTarget,
)
from annotations.rubric_schema import consensus, item_agreement
from audit.actions import AuditAction
from audit.services import audit_record
from core.bulk import bulk_insert
from core.imports import import_size_check
from core.locks import advisory_lock
from evaluations.models import ModelResponse
from evaluations.services.imports import ImportedReply, run_import_replies
from querybank.models import Category, ExpectedBehaviour, Query
from querybank.services import ImportedPrompt, queries_create_imported, query_attributes_set

BATCH = 2000
FIRST_PROBLEMS = 20


@dataclass(frozen=True)
class AnnotationImportResult:
    """What an import created, or with ``dry_run`` what it would create (``campaign`` is None)."""

    campaign: Campaign | None
    items: int
    labels: int
    raters: int
    adjudicated: int
    new_queries: int
    models: tuple[str, ...] = ()
    rater_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    judges: tuple[str, ...] = ()
    judge_labels: int = 0
    rows: int = 0
    dry_run: bool = False

    def summary(self) -> list[str]:
        """The plan or the outcome in a few lines, for the command, the page and the API."""
        verb = "would create" if self.dry_run else "created"
        return [
            f"{self.rows} rows read: {verb} {self.items} items, {self.labels} labels, "
            f"{self.adjudicated} adjudicated items, {self.new_queries} new prompts",
            f"models ({len(self.models)}): {', '.join(self.models)}",
            f"raters ({len(self.rater_names)}): {', '.join(self.rater_names)}",
            f"categories ({len(self.categories)}): {', '.join(self.categories)}",
            f"judges ({len(self.judges)}): {', '.join(self.judges) or '-'}; {self.judge_labels} judge labels",
        ]


def annotations_import(
    *,
    files: Sequence[tuple[str, bytes]],
    file_format: str,
    actor: User,
    name: str,
    rubric: Rubric,
    guideline: Guideline,
    default_category: Category,
    source: str = "annotation-import",
    missing_values: Sequence[str] = (),
    judges: Sequence[str] = (),
    dry_run: bool = False,
) -> AnnotationImportResult:
    """Import ``files`` (name, bytes) in ``file_format`` ("jsonl" or "csv") as a closed campaign.

    ``missing_values``: cell values that mean "not rated" (a judge's prose, "n/a"). ``judges``: the
    raters that are automated judges: their labels go to the judging app as external judge labels
    (``annotations.judges``), never into the campaign as a rater's. ``dry_run``: check everything
    and return what would be created, writing nothing. Raises ``AnnotationImportRejected`` with
    every problem (file, line, field); writes nothing then.
    """
    require(can_import_annotations, actor, message="Only maintainers import annotations.")
    if rubric.target != RubricTarget.RESPONSE:
        raise ValueError("Imported annotations rate responses: choose a response rubric.")
    import_size_check(sizes=[(file_name, len(raw)) for file_name, raw in files])
    specs = {spec.name: spec for spec in rubric.specs()}
    slugs = set(Category.objects.filter(retired=False).values_list("slug", flat=True))
    rows = read_annotation_files(
        files,
        file_format,
        rules=ImportRules(
            fields=specs,
            category_exists=slugs.__contains__,
            expected_choices=tuple(ExpectedBehaviour.values),
            missing_values=frozenset(v.strip() for v in missing_values if v.strip()),
        ),
    )
    judge_names = frozenset(judges)
    file_names = [file_name for file_name, _ in files]
    problems = _judge_problems(rows, judge_names, file_names[0])
    if problems:
        raise AnnotationImportRejected(problems[: FIRST_PROBLEMS * 10])
    digest = hashlib.sha256()
    for _, raw in files:
        digest.update(hashlib.sha256(raw).digest())
    import_hash = digest.hexdigest()

    with transaction.atomic():
        advisory_lock("annotations:import")
        earlier = Campaign.objects.filter(import_hash=import_hash).first()
        if earlier is not None:
            raise AnnotationImportRejected(
                [
                    ImportProblem(
                        file_names[0],
                        None,
                        None,
                        f"these files were already imported as campaign {earlier.name!r}",
                    )
                ]
            )
        categories = {c.slug: c for c in Category.objects.all()}
        by_item: dict[str, list[ImportRow]] = {}
        for row in rows:
            by_item.setdefault(row.item, []).append(row)
        human = [row for row in rows if row.rater not in judge_names]
        judged = [row for row in rows if row.rater in judge_names and row.value is not None]
        values: dict[tuple[str, str], dict[str, object]] = {}
        for row in human:
            if row.value is not None:
                values.setdefault((row.item, row.rater), {})[row.field] = row.value
        gold_of: dict[str, dict[str, object]] = {}
        for row in rows:
            if row.adjudicated is not None:
                gold_of.setdefault(row.item, {})[row.field] = row.adjudicated
        plan = AnnotationImportResult(
            campaign=None,
            items=len(by_item),
            labels=len(values),
            raters=len({row.rater for row in human}),
            adjudicated=len(gold_of),
            new_queries=0,
            models=tuple(sorted({row.model for row in rows})),
            rater_names=tuple(sorted({row.rater for row in human})),
            categories=tuple(sorted({row.category or default_category.slug for row in rows})),
            judges=tuple(sorted({row.rater for row in judged})),
            judge_labels=len(judged),
            rows=len(rows),
            dry_run=True,
        )
        wanted, existing = _prompts(rows, source=source)
        if dry_run:
            return replace(plan, new_queries=len(wanted) - len(existing))

        queries, new_queries = _queries(
            wanted, existing, source=source, categories=categories, default=default_category, actor=actor
        )
        run, responses = run_import_replies(
            actor=actor,
            name=name,
            origin={"imported_from": file_names, "format": file_format},
            replies=[
                ImportedReply(
                    key=item_key,
                    query=queries[item_rows[0].prompt_id],
                    model=item_rows[0].model,
                    text=item_rows[0].response,
                    file=item_rows[0].file,
                )
                for item_key, item_rows in by_item.items()
            ],
        )

        raters_per_item: dict[str, set[str]] = {key: set() for key in by_item}
        for item_key, rater in values:
            raters_per_item[item_key].add(rater)
        overlap = max(1, *(len(r) for r in raters_per_item.values()))
        campaign = Campaign.objects.create(
            name=name[:200],
            target=RubricTarget.RESPONSE,
            status=CampaignStatus.CLOSED,
            rubric=rubric,
            guideline=guideline,
            overlap=overlap,
            blind=True,
            seed=secrets.token_hex(16),
            created_by=actor,
            imported_from=", ".join(file_names)[:255],
            import_hash=import_hash,
            closed_at=timezone.now(),
            selection={"runs": [run.pk], "imported_from": file_names, "judges": sorted(judge_names)},
        )
        # Each item's agreement, dispute and gold computed here, as ``item_agreement_refresh`` does
        # for one item, so the items are written in batches rather than one update each.
        spec_list = list(specs.values())
        labels_of: dict[str, list[dict[str, object]]] = {}
        for (item_key, _), label_values in values.items():
            labels_of.setdefault(item_key, []).append(label_values)
        new_items: list[CampaignItem] = []
        for position, (item_key, raters) in enumerate(raters_per_item.items()):
            response = responses[item_key]
            item_labels = labels_of.get(item_key, [])
            agreement = item_agreement(
                spec_list,
                item_labels,
                on_primary=campaign.adjudicate_primary_disagreement,
                ordinal_spread=campaign.adjudicate_ordinal_spread,
            )
            gold = gold_of.get(item_key)
            if gold:
                gold_values, gold_source = gold, GoldSource.ADJUDICATION
            elif len(raters) >= overlap and not agreement.disputed:
                gold_values, gold_source = consensus(spec_list, item_labels), GoldSource.CONSENSUS
            else:
                gold_values, gold_source = None, GoldSource.NONE
            new_items.append(
                CampaignItem(
                    campaign=campaign,
                    query=response.query,
                    response=response,
                    sort_key=position,
                    stratum=f"t{response.target_id}:c{response.query.category_id}",
                    required_labels=overlap,
                    label_count=len(raters),
                    agreement=agreement.score,
                    disputed=agreement.disputed,
                    gold_values=gold_values,
                    gold_source=gold_source,
                )
            )
        created_items = bulk_insert(new_items, batch_size=BATCH)
        items = dict(zip(raters_per_item, created_items, strict=True))
        bulk_insert(
            (
                Label(
                    item=items[item_key],
                    campaign=campaign,
                    external_rater=rater,
                    rubric=rubric,
                    values=label_values,
                )
                for (item_key, rater), label_values in values.items()
            ),
            batch_size=BATCH,
        )
        bulk_insert(
            (
                Adjudication(
                    item=items[item_key],
                    values=gold,
                    rationale=f"Imported from {by_item[item_key][0].file}",
                    rubric=rubric,
                    imported=True,
                )
                for item_key, gold in gold_of.items()
            ),
            batch_size=BATCH,
        )
        judge_labels = _write_judge_labels(judged, responses, actor=actor, file_name=file_names[0])
        result = replace(
            plan, campaign=campaign, new_queries=new_queries, judge_labels=judge_labels, dry_run=False
        )
        audit_record(
            actor=actor,
            action=AuditAction.ANNOTATIONS_IMPORT,
            target=campaign,
            details={
                "files": file_names,
                "format": file_format,
                "hash": import_hash,
                "items": result.items,
                "labels": result.labels,
                "raters": result.raters,
                "adjudicated": result.adjudicated,
                "models": list(result.models),
                "run": run.pk,
                "new_queries": new_queries,
                "missing_values": sorted(set(missing_values)),
                "judges": list(result.judges),
                "judge_labels": judge_labels,
            },
        )
    return result


def _judge_problems(rows: list[ImportRow], judges: frozenset[str], file_name: str) -> list[ImportProblem]:
    """A named judge must rate in the file, and the judging app must be able to store its fields."""
    if not judges:
        return []
    problems = [
        ImportProblem(file_name, None, "rater", f"the judge {judge!r} rates nothing in these files")
        for judge in sorted(judges - {row.rater for row in rows})
    ]
    hook = judge_label_writer()
    if hook is None:
        return [
            ImportProblem(
                file_name, None, "rater", "judge labels need the judging app, which is not installed"
            )
        ]
    _, accepts = hook
    for row in rows:
        if row.rater in judges and row.value is not None and not accepts(row.field, row.value):
            problems.append(
                ImportProblem(
                    row.file,
                    row.line,
                    "field",
                    f"the judge's {row.field!r} = {row.value!r} cannot be stored as a judge label "
                    "(the judging app audits the fields of the MedHarm response rubric)",
                )
            )
    return problems


def _write_judge_labels(
    judged: list[ImportRow], responses: dict[str, ModelResponse], *, actor: User, file_name: str
) -> int:
    hook = judge_label_writer()
    if not judged or hook is None:
        return 0
    writer, _ = hook
    stored = 0
    by_judge: dict[str, list[JudgeLabel]] = {}
    for row in judged:
        by_judge.setdefault(row.rater, []).append(JudgeLabel(responses[row.item].pk, row.field, row.value))
    for judge, labels in sorted(by_judge.items()):
        stored += writer(actor, judge, file_name, labels)
    return stored


def _prompts(rows: list[ImportRow], *, source: str) -> tuple[dict[str, ImportRow], dict[str, Query]]:
    """The first row of each prompt id, and the queries of ``source`` that already hold one;
    a prompt id whose stored text or expected behaviour differs is a problem."""
    wanted: dict[str, ImportRow] = {}
    for row in rows:
        first = wanted.setdefault(row.prompt_id, row)
        if first.expected_behaviour is None and row.expected_behaviour is not None:
            wanted[row.prompt_id] = row
    existing = {q.external_id: q for q in Query.objects.filter(source=source, external_id__in=list(wanted))}
    problems = [
        ImportProblem(
            row.file, row.line, "prompt", f"prompt id {key!r} of source {source!r} already holds another text"
        )
        for key, row in wanted.items()
        if key in existing and existing[key].text != row.prompt
    ]
    problems += [
        ImportProblem(
            row.file,
            row.line,
            "expected_behaviour",
            f"prompt id {key!r} of source {source!r} already expects {existing[key].expected_behaviour!r}",
        )
        for key, row in wanted.items()
        if key in existing
        and row.expected_behaviour
        and existing[key].expected_behaviour not in ("", row.expected_behaviour)
    ]
    if problems:
        raise AnnotationImportRejected(problems)
    return wanted, existing


def _queries(
    wanted: dict[str, ImportRow],
    existing: dict[str, Query],
    *,
    source: str,
    categories: dict[str, Category],
    default: Category,
    actor: User,
) -> tuple[dict[str, Query], int]:
    """The query of each prompt id: an existing one of ``source`` (its expected behaviour set when
    it had none and the file gives one), or a new one."""
    for key, row in wanted.items():
        query = existing.get(key)
        if query is not None and row.expected_behaviour and not query.expected_behaviour:
            query_attributes_set(
                query=query,
                changes={"expected_behaviour": row.expected_behaviour},
                actor=actor,
                reason=f"annotation import ({row.file})",
            )
            query.expected_behaviour = row.expected_behaviour
    new = [
        ImportedPrompt(
            external_id=key,
            text=row.prompt,
            category=categories.get(row.category or "", default),
            source_file=row.file,
            source_row=row.line,
            expected_behaviour=row.expected_behaviour or "",
        )
        for key, row in wanted.items()
        if key not in existing
    ]
    queries = dict(existing)
    queries.update(queries_create_imported(prompts=new, source=source, actor=actor))
    return queries, len(new)
