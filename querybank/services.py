"""Writes to the query bank. Imports are all-or-nothing: every row is checked before one is written."""

from collections.abc import Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import models, transaction
from simple_history.utils import bulk_create_with_history

from accounts.models import User
from accounts.policy import can_import_queries, can_set_query_gold, require
from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import SystemActor
from core.imports import import_size_check
from core.locks import advisory_lock
from querybank.importers import (
    CHOICE_FIELDS,
    CategoryAtPosition,
    CategoryRef,
    ImportProblem,
    QueryImportRejected,
    QueryRow,
    RowRules,
    read_query_files,
)
from querybank.models import Category, Query

# Imports serialise on this PostgreSQL advisory lock: two imports of the same new external id must
# not both pass the "does it exist" check and then collide on the unique constraint.
_OPTIONAL_FIELDS = (*CHOICE_FIELDS, "notes", "metadata")


@dataclass(frozen=True)
class ImportResult:
    files: list[str]
    created: int
    updated: int
    unchanged: int


class _Categories:
    """Every category, found by slug or by (taxonomy, position) - one query for the whole import."""

    def __init__(self) -> None:
        self.by_slug: dict[str, Category] = {}
        self.by_position: dict[tuple[str, int], Category] = {}
        for category in Category.objects.select_related("taxonomy"):
            self.by_slug[category.slug] = category
            self.by_position.setdefault((category.taxonomy.slug, category.position), category)

    def get(self, ref: CategoryRef) -> Category | None:
        if isinstance(ref, CategoryAtPosition):
            return self.by_position.get((ref.taxonomy, ref.position))
        return self.by_slug.get(ref)

    def exists(self, ref: CategoryRef) -> bool:
        return self.get(ref) is not None


def _text_field(name: str) -> models.CharField:
    field = Query._meta.get_field(name)
    if not isinstance(field, models.CharField):
        raise TypeError(f"Query.{name} is not a text field: the import's row rules need one.")
    return field


def _choices(name: str) -> list[str]:
    choices = _text_field(name).choices
    if choices is None:
        raise TypeError(f"Query.{name} declares no choices: the import's row rules need them.")
    return [value for value, _ in choices]


def _max_length(name: str) -> int:
    max_length = _text_field(name).max_length
    if max_length is None:
        raise TypeError(f"Query.{name} declares no max_length: the import's row rules need one.")
    return max_length


def _row_rules(categories: _Categories) -> RowRules:
    return RowRules(
        choices={name: _choices(name) for name in CHOICE_FIELDS},
        max_lengths={name: _max_length(name) for name in ("external_id", "source")},
        category_exists=categories.exists,
    )


def queries_import(
    *, files: Sequence[tuple[str, bytes]], file_format: str, actor: User | SystemActor
) -> ImportResult:
    """Import ``files`` (name, raw bytes) of ``file_format`` ("jsonl", "csv", "medsafetybench").

    Raises ``querybank.importers.QueryImportRejected`` listing every problem (file, line, field)
    and writes nothing when any row is bad.
    """
    require(can_import_queries, actor, message="Only maintainers import queries.", allow_system=True)
    import_size_check(sizes=[(name, len(raw)) for name, raw in files])
    categories = _Categories()
    rows = read_query_files(files, file_format, rules=_row_rules(categories))
    history_user = actor if actor is not None and actor.pk else None
    change_reason = f"import ({file_format})"

    with transaction.atomic():
        advisory_lock("querybank:import")
        existing = _existing_queries(rows)
        to_create: list[tuple[QueryRow, Query]] = []
        to_update: list[tuple[QueryRow, Query]] = []
        unchanged = 0
        for row in rows:
            category = categories.get(row.category)
            if category is None:  # deleted since read_query_files checked it
                raise QueryImportRejected(
                    [
                        ImportProblem(
                            row.file, row.line, "category", f"{row.category} was deleted during the import"
                        )
                    ]
                )
            query = existing.get(row.key)
            if query is None:
                to_create.append((row, _new_query(row, category)))
            elif _apply(row, category, query):
                to_update.append((row, query))
            else:
                unchanged += 1
        _full_clean([*to_create, *to_update])

        bulk_create_with_history(
            [query for _, query in to_create],
            Query,
            batch_size=500,
            default_user=history_user,
            default_change_reason=change_reason,
        )
        for _, query in to_update:
            # save(), not bulk_update: it stamps updated_at and lets simple_history keep the old version.
            # django-simple-history reads these two attributes, set on the instance, in save().
            query._history_user = history_user  # type: ignore[attr-defined]
            query._change_reason = change_reason  # type: ignore[attr-defined]
            query.save()

        result = ImportResult(
            files=[name for name, _ in files],
            created=len(to_create),
            updated=len(to_update),
            unchanged=unchanged,
        )
        audit_record(
            actor=actor,
            action=AuditAction.QUERIES_IMPORT,
            details={
                "files": result.files,
                "format": file_format,
                "counts": {
                    "created": result.created,
                    "updated": result.updated,
                    "unchanged": result.unchanged,
                },
            },
        )
    return result


def _existing_queries(rows: list[QueryRow]) -> dict[tuple[str, str], Query]:
    ids_by_source: dict[str, list[str]] = {}
    for row in rows:
        ids_by_source.setdefault(row.source, []).append(row.external_id)
    existing: dict[tuple[str, str], Query] = {}
    for source, external_ids in ids_by_source.items():
        for start in range(0, len(external_ids), 5000):
            chunk = external_ids[start : start + 5000]
            for query in Query.objects.filter(source=source, external_id__in=chunk).select_for_update():
                existing[(query.source, query.external_id)] = query
    return existing


def _full_clean(pairs: list[tuple[QueryRow, Query]]) -> None:
    """The model's own field checks, after ours: a safety net that reports in the same terms."""
    problems: list[ImportProblem] = []
    for row, query in pairs:
        try:
            # The category was resolved above, and uniqueness is the lock's job: skip their queries.
            query.full_clean(exclude=["category"], validate_unique=False, validate_constraints=False)
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                problems.extend(ImportProblem(row.file, row.line, name, message) for message in messages)
    if problems:
        raise QueryImportRejected(problems)


def _new_query(row: QueryRow, category: Category) -> Query:
    query = Query(
        source=row.source,
        external_id=row.external_id,
        text=row.text,
        category=category,
        source_file=row.file,
        source_row=row.source_row,
    )
    for name in _OPTIONAL_FIELDS:
        value = getattr(row, name)
        if value is not None:
            setattr(query, name, value)
    return query


def _apply(row: QueryRow, category: Category, query: Query) -> bool:
    """Set the row's values on ``query``; true when anything changed. Optional fields the row leaves
    out keep their stored value, and the file/row reference moves only with a real change (so that
    re-importing an export, under another file name, is a no-op)."""
    wanted: dict[str, object] = {"text": row.text, "category_id": category.pk}
    for name in _OPTIONAL_FIELDS:
        value = getattr(row, name)
        if value is not None:
            wanted[name] = value
    changed = {name: value for name, value in wanted.items() if getattr(query, name) != value}
    if not changed:
        return False
    for name, value in changed.items():
        setattr(query, name, value)
    query.source_file = row.file
    query.source_row = row.source_row
    return True


# The attributes of a query that a gold query label may set (annotations.models.QueryAttribute).
GOLD_ATTRIBUTES = ("category", "expected_behaviour", "severity")


@transaction.atomic
def query_attributes_set(
    *, query: Query, changes: dict[str, str], actor: User | SystemActor | None, reason: str
) -> list[str]:
    """Set ``changes`` (attribute -> value; a category by its slug) on ``query``, kept in its history
    with ``reason``; returns the attributes that changed. Called with the gold label of a finished
    query item (a clinicians' consensus or an adjudication), so whoever may label or adjudicate
    queries may cause it."""
    require(can_set_query_gold, actor, message="Only clinicians, adjudicators and maintainers set gold.")
    unknown = sorted(set(changes) - set(GOLD_ATTRIBUTES))
    if unknown:
        raise ValidationError(f"These query attributes cannot be set from a label: {', '.join(unknown)}.")
    query = Query.objects.select_for_update().select_related("category").get(pk=query.pk)
    before: dict[str, str] = {}
    after: dict[str, str] = {}
    for attribute, value in changes.items():
        if attribute == "category":
            category = Category.objects.filter(slug=value).first()
            if category is None or category.pk == query.category_id:
                continue
            before[attribute], after[attribute] = query.category.slug, category.slug
            query.category = category
        elif getattr(query, attribute) != value:
            before[attribute], after[attribute] = getattr(query, attribute), value
            setattr(query, attribute, value)
    if not after:
        return []
    query.full_clean(validate_unique=False, validate_constraints=False)
    query._change_reason = reason  # type: ignore[attr-defined]  # read by django-simple-history
    query._history_user = actor if isinstance(actor, User) else None  # type: ignore[attr-defined]
    query.save()
    audit_record(
        actor=actor,
        action=AuditAction.QUERY_GOLD_APPLY,
        target=query,
        details={"before": before, "after": after, "reason": reason},
    )
    return sorted(after)


@dataclass(frozen=True)
class ImportedPrompt:
    """A prompt another tool asked, new to the bank: where it came from and its category."""

    external_id: str
    text: str
    category: Category
    source_file: str
    source_row: int | None


@transaction.atomic
def queries_create_imported(
    *, prompts: Sequence[ImportedPrompt], source: str, actor: User | SystemActor
) -> dict[str, Query]:
    """Add the prompts of an annotation import to the bank under ``source`` (with their history);
    returns them by external id. The caller has checked that none of them exists yet."""
    require(can_import_queries, actor, message="Only maintainers import queries.", allow_system=True)
    created = bulk_create_with_history(
        [
            Query(
                external_id=prompt.external_id,
                text=prompt.text,
                category=prompt.category,
                source=source,
                source_file=prompt.source_file,
                source_row=prompt.source_row,
            )
            for prompt in prompts
        ],
        Query,
        default_user=actor if isinstance(actor, User) else None,
        default_change_reason=f"annotation import ({source})",
    )
    return {query.external_id: query for query in created}
