"""Writes to the query bank. Imports are all-or-nothing: every row is checked before one is written."""

from collections.abc import Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import models, transaction
from simple_history.utils import bulk_create_with_history

from accounts.models import User
from accounts.policy import can_import_queries, can_manage_taxonomies, can_set_query_gold, require
from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import SystemActor
from core.errors import Conflict
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
    TaxonomySpec,
    read_query_files,
)
from querybank.models import Category, Query, Taxonomy

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
        # A retired category (or one of a retired taxonomy) takes no new queries.
        for category in Category.objects.select_related("taxonomy").filter(
            retired=False, taxonomy__retired=False
        ):
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
    *,
    files: Sequence[tuple[str, bytes]],
    file_format: str,
    actor: User | SystemActor,
    taxonomy: TaxonomySpec | None = None,
) -> ImportResult:
    """Import ``files`` (name, raw bytes) of ``file_format`` ("jsonl", "csv", "medsafetybench").

    With ``taxonomy`` (``read_taxonomy_file``), the taxonomy and its categories are created or
    updated first, in the same transaction: a rejected query file leaves no taxonomy behind.

    Raises ``querybank.importers.QueryImportRejected`` listing every problem (file, line, field)
    and writes nothing when any row is bad.
    """
    require(can_import_queries, actor, message="Only maintainers import queries.", allow_system=True)
    import_size_check(sizes=[(name, len(raw)) for name, raw in files])
    if taxonomy is not None:
        with transaction.atomic():
            taxonomy_import(actor=actor, spec=taxonomy)
            return queries_import(files=files, file_format=file_format, actor=actor)
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
    expected_behaviour: str = ""


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
                expected_behaviour=prompt.expected_behaviour,
            )
            for prompt in prompts
        ],
        Query,
        batch_size=1000,
        default_user=actor if isinstance(actor, User) else None,
        default_change_reason=f"annotation import ({source})",
    )
    return {query.external_id: query for query in created}


# --- taxonomies and categories --------------------------------------------------------------------

_TAXONOMY_MESSAGE = "Only maintainers manage taxonomies and categories."


def _in_use(category: Category) -> bool:
    # Queries point at categories with PROTECT; the rubric fields and campaign strata that name
    # a category do so through its queries, so a category without queries is free to go.
    return Query.objects.filter(category=category).exists()


@transaction.atomic
def taxonomy_create(*, actor: User | SystemActor, slug: str, name: str, description: str = "") -> Taxonomy:
    require(can_manage_taxonomies, actor, message=_TAXONOMY_MESSAGE)
    taxonomy = Taxonomy(slug=slug, name=name, description=description)
    taxonomy.full_clean()
    taxonomy.save()
    audit_record(
        actor=actor, action=AuditAction.TAXONOMY_CREATE, target=taxonomy, details={"slug": slug, "name": name}
    )
    return taxonomy


@transaction.atomic
def taxonomy_update(
    *,
    actor: User | SystemActor,
    taxonomy: Taxonomy,
    name: str | None = None,
    description: str | None = None,
    retired: bool | None = None,
) -> Taxonomy:
    """Rename, describe, retire or bring back a taxonomy; the slug is its identity and stays."""
    require(can_manage_taxonomies, actor, message=_TAXONOMY_MESSAGE)
    taxonomy = Taxonomy.objects.select_for_update().get(pk=taxonomy.pk)
    changes = _set(taxonomy, name=name, description=description, retired=retired)
    if changes:
        taxonomy.full_clean()
        taxonomy.save()
        audit_record(actor=actor, action=AuditAction.TAXONOMY_UPDATE, target=taxonomy, details=changes)
    return taxonomy


@transaction.atomic
def taxonomy_delete(*, actor: User | SystemActor, taxonomy: Taxonomy) -> None:
    """Delete a taxonomy none of whose categories holds a query (retire it otherwise)."""
    require(can_manage_taxonomies, actor, message=_TAXONOMY_MESSAGE)
    taxonomy = Taxonomy.objects.select_for_update().get(pk=taxonomy.pk)
    if Query.objects.filter(category__taxonomy=taxonomy).exists():
        raise Conflict("Queries are filed under this taxonomy's categories: retire it instead.")
    details: dict[str, object] = {
        "slug": taxonomy.slug,
        "categories": list(taxonomy.categories.values_list("slug", flat=True)),
    }
    audit_record(actor=actor, action=AuditAction.TAXONOMY_DELETE, target=taxonomy, details=details)
    taxonomy.categories.all().delete()
    taxonomy.delete()


@transaction.atomic
def category_create(
    *,
    actor: User | SystemActor,
    taxonomy: Taxonomy,
    slug: str,
    name: str,
    description: str = "",
    position: int | None = None,
) -> Category:
    """A new category, last in its taxonomy unless ``position`` says otherwise."""
    require(can_manage_taxonomies, actor, message=_TAXONOMY_MESSAGE)
    if position is None:
        last = taxonomy.categories.order_by("-position").values_list("position", flat=True).first()
        position = 0 if last is None else last + 1
    category = Category(taxonomy=taxonomy, slug=slug, name=name, description=description, position=position)
    category.full_clean()
    category.save()
    audit_record(
        actor=actor,
        action=AuditAction.CATEGORY_CREATE,
        target=category,
        details={"taxonomy": taxonomy.slug, "slug": slug, "name": name, "position": position},
    )
    return category


@transaction.atomic
def category_update(
    *,
    actor: User | SystemActor,
    category: Category,
    name: str | None = None,
    description: str | None = None,
    position: int | None = None,
    retired: bool | None = None,
) -> Category:
    """Rename, describe, reorder, retire or bring back a category (its slug and taxonomy stay)."""
    require(can_manage_taxonomies, actor, message=_TAXONOMY_MESSAGE)
    category = Category.objects.select_for_update().get(pk=category.pk)
    changes = _set(category, name=name, description=description, position=position, retired=retired)
    if changes:
        category.full_clean()
        category.save()
        audit_record(actor=actor, action=AuditAction.CATEGORY_UPDATE, target=category, details=changes)
    return category


@transaction.atomic
def category_delete(*, actor: User | SystemActor, category: Category) -> None:
    """Delete a category no query is filed under; one in use is retired instead (``Conflict``)."""
    require(can_manage_taxonomies, actor, message=_TAXONOMY_MESSAGE)
    category = Category.objects.select_for_update().get(pk=category.pk)
    if _in_use(category):
        raise Conflict("Queries are filed under this category: retire it instead.")
    audit_record(
        actor=actor,
        action=AuditAction.CATEGORY_DELETE,
        target=category,
        details={"slug": category.slug, "taxonomy": category.taxonomy.slug},
    )
    category.delete()


@transaction.atomic
def taxonomy_import(*, actor: User | SystemActor, spec: TaxonomySpec) -> Taxonomy:
    """Create or update the taxonomy of a file and its categories, in the file's order.

    Categories the file leaves out are kept as they are; a category slug that belongs to another
    taxonomy is refused (slugs are global, and a category changes taxonomy only by hand).
    """
    require(can_manage_taxonomies, actor, message=_TAXONOMY_MESSAGE, allow_system=True)
    advisory_lock("querybank:taxonomy")
    taxonomy, created = Taxonomy.objects.get_or_create(
        slug=spec.slug, defaults={"name": spec.name, "description": spec.description}
    )
    if not created:
        _set(taxonomy, name=spec.name, description=spec.description or None)
        taxonomy.full_clean()
        taxonomy.save()
    existing = {c.slug: c for c in Category.objects.filter(slug__in=[c.slug for c in spec.categories])}
    problems = [
        ImportProblem(
            spec.file,
            None,
            f"categories[{position}].slug",
            f"{category.slug!r} is a category of another taxonomy ({existing[category.slug].taxonomy.slug})",
        )
        for position, category in enumerate(spec.categories)
        if category.slug in existing and existing[category.slug].taxonomy_id != taxonomy.pk
    ]
    if problems:
        raise QueryImportRejected(problems)
    created_slugs: list[str] = []
    for position, item in enumerate(spec.categories):
        category = existing.get(item.slug)
        if category is None:
            category = Category(taxonomy=taxonomy, slug=item.slug)
            created_slugs.append(item.slug)
        category.name, category.position = item.name, position
        if item.description:
            category.description = item.description
        category.full_clean()
        category.save()
    audit_record(
        actor=actor,
        action=AuditAction.TAXONOMY_IMPORT,
        target=taxonomy,
        details={
            "file": spec.file,
            "slug": spec.slug,
            "created": created,
            "categories": [c.slug for c in spec.categories],
            "new_categories": created_slugs,
        },
    )
    return taxonomy


def _set(obj: Taxonomy | Category, **values: object) -> dict[str, object]:
    """Set the given (non-None) attributes; the changes as ``{name: [old, new]}``."""
    changes: dict[str, object] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, str):
            value = value.strip()
        old = getattr(obj, key)
        if old != value:
            changes[key] = [old, value]
            setattr(obj, key, value)
    return changes
