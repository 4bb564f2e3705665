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
from dataclasses import dataclass, field, replace
from typing import IO

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.policy import can_import_annotations, require
from annotations.importers import (
    AnnotationImportRejected,
    AnnotationPlan,
    FileChanged,
    ImportProblem,
    ImportRules,
    Source,
    sources_open,
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
from core.bulk import copy_insert
from core.imports import import_size_check
from core.locks import advisory_lock
from evaluations.services.imports import (
    ImportedReply,
    ImportedRun,
    run_import_add,
    run_import_finish,
    run_import_start,
)
from querybank.models import Category, ExpectedBehaviour, Query
from querybank.services import ImportedPrompt, queries_create_imported, query_attributes_set

# Items written together; what the second reading holds at most (their labels and texts).
BATCH = 1000
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
    files: Sequence[tuple[str, bytes | IO[bytes]]],
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
    """Import ``files`` (name, bytes or a binary file) in ``file_format`` ("jsonl" or "csv") as a
    closed campaign.

    ``missing_values``: cell values that mean "not rated" (a judge's prose, "n/a"). ``judges``: the
    raters that are automated judges: their labels go to the judging app as external judge labels
    (``annotations.judges``), never into the campaign as a rater's. ``dry_run``: check everything
    and return what would be created, writing nothing. Raises ``AnnotationImportRejected`` with
    every problem (file, line, field); writes nothing then.

    The files are read twice, never held in memory: once to check every row, once to write the
    items in batches as each one's last row goes by, in one transaction (``AnnotationPlan``). A file
    object that cannot seek is copied to a temporary file first; a file that changes between the
    two readings is refused.
    """
    require(can_import_annotations, actor, message="Only maintainers import annotations.")
    if rubric.target != RubricTarget.RESPONSE:
        raise ValueError("Imported annotations rate responses: choose a response rubric.")
    sources = sources_open(files)
    try:
        import_size_check(sizes=[(item.name, item.size) for item in sources])
        return _import(
            sources,
            file_format=file_format,
            actor=actor,
            name=name,
            rubric=rubric,
            guideline=guideline,
            default_category=default_category,
            source=source,
            missing_values=missing_values,
            judges=frozenset(judges),
            dry_run=dry_run,
        )
    finally:
        for item in sources:
            item.close()


def _import(
    sources: list[Source],
    *,
    file_format: str,
    actor: User,
    name: str,
    rubric: Rubric,
    guideline: Guideline,
    default_category: Category,
    source: str,
    missing_values: Sequence[str],
    judges: frozenset[str],
    dry_run: bool,
) -> AnnotationImportResult:
    specs = {spec.name: spec for spec in rubric.specs()}
    slugs = set(Category.objects.filter(retired=False).values_list("slug", flat=True))
    plan = AnnotationPlan(
        sources=sources,
        file_format=file_format,
        rules=ImportRules(
            fields=specs,
            category_exists=slugs.__contains__,
            expected_choices=tuple(ExpectedBehaviour.values),
            missing_values=frozenset(v.strip() for v in missing_values if v.strip()),
        ),
        judges=judges,
    )
    hook = judge_label_writer() if judges else None
    problems = plan.check(judge_field_check=hook[1] if hook is not None else None)
    file_names = plan.file_names()
    if judges and hook is None:
        problems = [
            ImportProblem(
                file_names[0], None, "rater", "judge labels need the judging app, which is not installed"
            )
        ]
    if problems:
        raise AnnotationImportRejected(problems[: FIRST_PROBLEMS * 10])
    digest = hashlib.sha256()
    for file_digest in plan.digests:
        digest.update(file_digest)
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
        human = plan.human_raters()
        existing = _existing_queries(plan, source=source)
        result = AnnotationImportResult(
            campaign=None,
            items=len(plan.items.names),
            labels=plan.labels(),
            raters=len(human),
            adjudicated=plan.adjudicated(),
            new_queries=len(plan.prompts.names) - len(existing),
            models=tuple(sorted(plan.models.names)),
            rater_names=tuple(human),
            categories=tuple(plan.category_slugs(default_category.slug)),
            judges=tuple(sorted(plan.raters.names[rater] for rater in plan.judged_raters)),
            judge_labels=plan.judge_labels,
            rows=plan.rows,
            dry_run=True,
        )
        if dry_run:
            return result

        _expected_set(plan, existing, source=source, actor=actor)
        imported = run_import_start(
            actor=actor,
            name=name,
            origin={"imported_from": file_names, "format": file_format},
            models=plan.models.names,
        )
        campaign = Campaign.objects.create(
            name=name[:200],
            target=RubricTarget.RESPONSE,
            status=CampaignStatus.CLOSED,
            rubric=rubric,
            guideline=guideline,
            overlap=plan.overlap(),
            blind=True,
            seed=secrets.token_hex(16),
            created_by=actor,
            imported_from=", ".join(file_names)[:255],
            import_hash=import_hash,
            closed_at=timezone.now(),
            selection={"runs": [imported.run.pk], "imported_from": file_names, "judges": sorted(judges)},
        )
        writer = _ItemWriter(
            plan=plan,
            campaign=campaign,
            imported=imported,
            queries={number: (query.pk, query.category_id) for number, query in existing.items()},
            categories=categories,
            default_category=default_category,
            source=source,
            actor=actor,
        )
        writer.write_all()
        run_import_finish(imported=imported, actor=actor)
        judge_labels = _write_judge_labels(writer.judge_labels, actor=actor, file_name=file_names[0])
        result = replace(result, campaign=campaign, judge_labels=judge_labels, dry_run=False)
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
                "run": imported.run.pk,
                "new_queries": result.new_queries,
                "missing_values": sorted(set(missing_values)),
                "judges": list(result.judges),
                "judge_labels": judge_labels,
            },
        )
    return result


_ITEM_COLUMNS = (
    "campaign_id",
    "query_id",
    "response_id",
    "stratum",
    "sort_key",
    "required_labels",
    "label_count",
    "agreement",
    "disputed",
    "gold_values",
    "gold_source",
)


@dataclass
class _OpenItem:
    """An item whose rows are being read again: its labels until its last row comes by."""

    prompt: str
    response: str
    file: str
    labels: dict[str, dict[str, object]] = field(default_factory=dict)
    gold: dict[str, object] = field(default_factory=dict)
    judged: list[tuple[str, str, object]] = field(default_factory=list)


@dataclass
class _ItemWriter:
    """The second reading: each item written, with its response, labels and adjudication, in
    batches of ``BATCH`` items as their last rows go by; new prompts become queries on the way."""

    plan: AnnotationPlan
    campaign: Campaign
    imported: ImportedRun
    queries: dict[int, tuple[int, int]]  # prompt number -> (query id, its category id)
    categories: dict[str, Category]
    default_category: Category
    source: str
    actor: User
    judge_labels: dict[str, list[JudgeLabel]] = field(default_factory=dict)

    def write_all(self) -> None:
        plan = self.plan
        last_file, last_line = plan.item_last_file, plan.item_last_line
        judges = plan.judges
        names = plan.file_names()
        open_items: dict[int, _OpenItem] = {}
        batch: list[tuple[int, _OpenItem]] = []
        rows = 0
        for file_number, line, item, rater, field_name, value, gold, record in plan.ratings_again():
            rows += 1
            current = open_items.get(item)
            if current is None:
                current = open_items[item] = _OpenItem(
                    str(record["prompt"]), str(record["response"]), names[file_number]
                )
            if value is not None:
                if rater in judges:
                    current.judged.append((rater, field_name, value))
                else:
                    labels = current.labels.get(rater)
                    if labels is None:
                        labels = current.labels[rater] = {}
                    labels[field_name] = value
            if gold is not None:
                current.gold[field_name] = gold
            if last_line[item] == line and last_file[item] == file_number:
                batch.append((item, open_items.pop(item)))
                if len(batch) >= BATCH:
                    self._write(batch)
                    batch = []
        if open_items or rows != plan.rows:
            raise FileChanged(names[-1])
        if batch:
            self._write(batch)

    def _write(self, batch: list[tuple[int, _OpenItem]]) -> None:
        plan, campaign = self.plan, self.campaign
        self._create_queries(batch)
        item_names, models = plan.items.names, plan.models.names
        replies = [
            ImportedReply(
                key=item_names[item],
                query=self._query(plan.item_prompt[item]),
                model=models[plan.item_model[item]],
                text=current.response,
                file=current.file,
                sample_index=plan.item_sample[item],
            )
            for item, current in batch
        ]
        responses = run_import_add(imported=self.imported, replies=replies)
        specs = list(plan.rules.fields.values())
        overlap = campaign.overlap
        on_primary, spread = campaign.adjudicate_primary_disagreement, campaign.adjudicate_ordinal_spread
        targets = self.imported.targets
        consensus_source, adjudication_source, no_source = (
            str(GoldSource.CONSENSUS),
            str(GoldSource.ADJUDICATION),
            str(GoldSource.NONE),
        )
        item_rows = []
        for (item, current), response, reply in zip(batch, responses, replies, strict=True):
            item_labels = list(current.labels.values())
            agreement = item_agreement(specs, item_labels, on_primary=on_primary, ordinal_spread=spread)
            if current.gold:
                gold_values, gold_source = current.gold, adjudication_source
            elif len(current.labels) >= overlap and not agreement.disputed:
                gold_values, gold_source = consensus(specs, item_labels), consensus_source
            else:
                gold_values, gold_source = None, no_source
            item_rows.append(
                (
                    campaign.pk,
                    reply.query.pk,
                    response,
                    f"t{targets[reply.model].pk}:c{reply.query.category_id}",
                    item,
                    overlap,
                    len(current.labels),
                    agreement.score,
                    agreement.disputed,
                    gold_values,
                    gold_source,
                )
            )
        created = copy_insert(CampaignItem, _ITEM_COLUMNS, item_rows)
        rubric_id = campaign.rubric_id
        copy_insert(
            Label,
            ("item_id", "campaign_id", "external_rater", "rubric_id", "values"),
            [
                (campaign_item, campaign.pk, rater, rubric_id, values)
                for (_, current), campaign_item in zip(batch, created, strict=True)
                for rater, values in current.labels.items()
            ],
        )
        copy_insert(
            Adjudication,
            ("item_id", "values", "rationale", "rubric_id", "imported"),
            [
                (campaign_item, current.gold, f"Imported from {current.file}", rubric_id, True)
                for (_, current), campaign_item in zip(batch, created, strict=True)
                if current.gold
            ],
        )
        for (_, current), response in zip(batch, responses, strict=True):
            for judge, field_name, value in current.judged:
                self.judge_labels.setdefault(judge, []).append(JudgeLabel(response, field_name, value))

    def _query(self, prompt: int) -> Query:
        # Only the ids are needed to refer to it: no row is read back.
        query_id, category_id = self.queries[prompt]
        return Query(pk=query_id, category_id=category_id)

    def _create_queries(self, batch: list[tuple[int, _OpenItem]]) -> None:
        plan = self.plan
        names = plan.file_names()
        new: dict[int, ImportedPrompt] = {}
        for item, current in batch:
            prompt = plan.item_prompt[item]
            if prompt in self.queries or prompt in new:
                continue
            category = plan.prompt_category[prompt]
            expected = plan.prompt_expected[prompt]
            new[prompt] = ImportedPrompt(
                external_id=plan.prompts.names[prompt],
                text=current.prompt,
                category=(
                    self.default_category
                    if category == -1
                    else self.categories.get(plan.categories.names[category], self.default_category)
                ),
                source_file=names[plan.prompt_row_file[prompt]],
                source_row=plan.prompt_row_line[prompt],
                expected_behaviour="" if expected == -1 else plan.expected_names[expected],
            )
        if not new:
            return
        created = queries_create_imported(prompts=list(new.values()), source=self.source, actor=self.actor)
        for prompt, imported_prompt in new.items():
            query = created[imported_prompt.external_id]
            self.queries[prompt] = (query.pk, query.category_id)


def _write_judge_labels(by_judge: dict[str, list[JudgeLabel]], *, actor: User, file_name: str) -> int:
    hook = judge_label_writer()
    if not by_judge or hook is None:
        return 0
    writer, _ = hook
    return sum(writer(actor, judge, file_name, labels) for judge, labels in sorted(by_judge.items()))


def _existing_queries(plan: AnnotationPlan, *, source: str) -> dict[int, Query]:
    """The queries of ``source`` that already hold one of the plan's prompt ids, by prompt number;
    a prompt id whose stored text or expected behaviour differs is a problem."""
    names = plan.file_names()
    ids = plan.prompts.index
    existing: dict[int, Query] = {}
    prompt_ids = plan.prompts.names
    for start in range(0, len(prompt_ids), BATCH):
        chunk = prompt_ids[start : start + BATCH]
        for query in Query.objects.filter(source=source, external_id__in=chunk).only(
            "pk", "external_id", "text", "expected_behaviour", "category_id"
        ):
            existing[ids[query.external_id]] = query
    texts, expectations = [], []
    for prompt, query in existing.items():
        where = (names[plan.prompt_row_file[prompt]], plan.prompt_row_line[prompt])
        key = plan.prompts.names[prompt]
        if hash(query.text) != plan.prompt_hash[prompt]:
            texts.append(
                ImportProblem(
                    *where, "prompt", f"prompt id {key!r} of source {source!r} already holds another text"
                )
            )
        expected = plan.prompt_expected[prompt]
        if expected != -1 and query.expected_behaviour not in ("", plan.expected_names[expected]):
            expectations.append(
                ImportProblem(
                    *where,
                    "expected_behaviour",
                    f"prompt id {key!r} of source {source!r} already expects {query.expected_behaviour!r}",
                )
            )
    if texts or expectations:
        raise AnnotationImportRejected(texts + expectations)
    return existing


def _expected_set(plan: AnnotationPlan, existing: dict[int, Query], *, source: str, actor: User) -> None:
    """An existing query without an expected behaviour takes the one the file gives."""
    names = plan.file_names()
    for prompt, query in existing.items():
        expected = plan.prompt_expected[prompt]
        if expected != -1 and not query.expected_behaviour:
            value = plan.expected_names[expected]
            query_attributes_set(
                query=Query.objects.get(pk=query.pk),
                changes={"expected_behaviour": value},
                actor=actor,
                reason=f"annotation import ({names[plan.prompt_row_file[prompt]]})",
            )
