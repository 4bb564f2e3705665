"""The whole annotation import: the first reading checks every row and keeps a few integers per
item, prompt and rater; the second hands the rows over item by item."""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from annotations.importers.files import FileChanged, Source, is_plain_text, read_records
from annotations.importers.rows import RowChecker
from annotations.importers.rules import (
    FORMATS,
    ITEM_PART,
    AnnotationImportRejected,
    CheckedRow,
    ImportRules,
)
from annotations.rubric_schema import Kind

# The same text decoding and CSV/JSONL reading rules as every import (core.imports).
from core.imports import ImportProblem

# --- the whole import ----------------------------------------------------------------------------------


class _Names:
    """Strings numbered in the order first seen."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.names: list[str] = []

    def of(self, name: str) -> int:
        number = self.index.get(name)
        if number is None:
            number = self.index[name] = len(self.names)
            self.names.append(name)
        return number


@dataclass
class AnnotationPlan:
    """What the first reading learnt, a few integers per item, prompt and rater: enough to check
    every cross-row rule, to say what an import would create, and to write each item when its last
    row comes by on the second reading. Strings are compared by their hash (texts are not kept)."""

    sources: list[Source]
    file_format: str
    rules: ImportRules
    judges: frozenset[str] = frozenset()
    rows: int = 0
    digests: list[bytes] = field(default_factory=list)
    plain: list[bool] = field(default_factory=list)
    items: _Names = field(default_factory=_Names)
    models: _Names = field(default_factory=_Names)
    raters: _Names = field(default_factory=_Names)
    prompts: _Names = field(default_factory=_Names)  # by prompt id
    categories: _Names = field(default_factory=_Names)
    # Per item (by number).
    item_model: array = field(default_factory=lambda: array("l"))
    item_prompt: array = field(default_factory=lambda: array("l"))
    item_prompt_hash: array = field(default_factory=lambda: array("q"))
    item_response_hash: array = field(default_factory=lambda: array("q"))
    item_category: array = field(default_factory=lambda: array("l"))  # -1: none given
    item_expected: array = field(default_factory=lambda: array("l"))  # -1: none given
    item_first_file: array = field(default_factory=lambda: array("l"))
    item_first_line: array = field(default_factory=lambda: array("l"))
    item_last_file: array = field(default_factory=lambda: array("l"))
    item_last_line: array = field(default_factory=lambda: array("l"))
    item_sample: array = field(default_factory=lambda: array("l"))
    item_rated: list[int] = field(default_factory=list)  # bit (rater * fields + field): rated
    item_labelled: list[int] = field(default_factory=list)  # bit rater: a person gave a value
    item_gold: list[int] = field(default_factory=list)  # 16 bits per field: option + 1
    gold_text: dict[tuple[int, int], int] = field(default_factory=dict)  # text fields: value hash
    # Per prompt id (by number): the prompt's hash and first row, and the row it is created from.
    prompt_hash: array = field(default_factory=lambda: array("q"))
    prompt_first_file: array = field(default_factory=lambda: array("l"))
    prompt_first_line: array = field(default_factory=lambda: array("l"))
    prompt_row_file: array = field(default_factory=lambda: array("l"))
    prompt_row_line: array = field(default_factory=lambda: array("l"))
    prompt_category: array = field(default_factory=lambda: array("l"))
    prompt_expected: array = field(default_factory=lambda: array("l"))
    samples: dict[tuple[int, int], int] = field(default_factory=dict)  # (prompt, model): count
    uncategorised: bool = False  # a row names no category (its prompt takes the default)
    judged_raters: set[int] = field(default_factory=set)  # judges with a value
    judge_labels: int = 0
    label_count: int = 0
    overlap_count: int = 1
    adjudicated_count: int = 0
    expected_names: tuple[str, ...] = ()

    @property
    def field_names(self) -> list[str]:
        return list(self.rules.fields)

    def file_names(self) -> list[str]:
        return [source.name for source in self.sources]

    # -- the first reading --

    def check(self, *, judge_field_check: Callable[[str, object], bool] | None = None) -> list[ImportProblem]:
        """Read every file once, checking each row and every cross-row rule; returns the judge
        problems (raised by the caller after the reader's); raises ``AnnotationImportRejected``
        with every problem the reader finds."""
        if self.file_format not in FORMATS:
            raise ValueError(
                f"Unknown import format {self.file_format!r}; expected one of {', '.join(FORMATS)}."
            )
        if not self.sources:
            raise ValueError("No files to import.")
        self.expected_names = tuple(self.rules.expected_choices)
        checker = RowChecker(self.rules)
        problems: list[ImportProblem] = []
        judge_problems: list[ImportProblem] = []
        field_number = {name: number for number, name in enumerate(self.rules.fields)}
        option_code: dict[str, dict[tuple[type, object], int]] = {
            name: {(type(o.value), o.value): position + 1 for position, o in enumerate(spec.options)}
            for name, spec in self.rules.fields.items()
        }
        width = len(field_number)
        from_csv = self.file_format == "csv"
        duplicates: list[tuple[int, int, int, int, int]] = []  # file, line, item, rater, field
        gold_conflicts: list[tuple[int, int, int, int]] = []  # file, line, item, field
        judges = self.judges
        judge_accepts: dict[tuple[str, type, object], bool] = {}
        names = self.file_names()
        last_part: tuple[object, ...] = ()
        last_item = -1
        for file_number, source in enumerate(self.sources):
            plain = is_plain_text(source)
            self.plain.append(plain)
            digest = hashlib.sha256()
            found = False
            for line, record in read_records(source, self.file_format, digest, problems, plain=plain):
                found = True
                row = checker.check(source.name, line, record, from_csv=from_csv, problems=problems)
                if row is None:
                    continue
                self.rows += 1
                item_part = row[:ITEM_PART]
                if item_part == last_part:
                    # The rows of an item usually follow each other: nothing new to check.
                    item = last_item
                    self.item_last_file[item] = file_number
                    self.item_last_line[item] = line
                else:
                    item = last_item = self.items.of(row.item)
                    last_part = item_part
                    self._item(item, row, file_number, line, names, problems)
                rater = self.raters.of(row.rater)
                field_position = field_number[row.field]
                bit = 1 << (rater * width + field_position)
                if self.item_rated[item] & bit:
                    duplicates.append((file_number, line, item, rater, field_position))
                else:
                    self.item_rated[item] |= bit
                if row.value is not None:
                    if row.rater in judges:
                        self.judged_raters.add(rater)
                        self.judge_labels += 1
                        if judge_field_check is not None:
                            key = (row.field, type(row.value), row.value)
                            accepted = judge_accepts.get(key)
                            if accepted is None:
                                accepted = judge_accepts[key] = judge_field_check(row.field, row.value)
                            if not accepted:
                                judge_problems.append(
                                    ImportProblem(
                                        source.name,
                                        line,
                                        "field",
                                        f"the judge's {row.field!r} = {row.value!r} cannot be stored as a "
                                        "judge label (the judging app audits the fields of the MedHarm "
                                        "response rubric)",
                                    )
                                )
                    else:
                        self.item_labelled[item] |= 1 << rater
                if row.adjudicated is not None:
                    spec_codes = option_code[row.field]
                    code = spec_codes.get((type(row.adjudicated), row.adjudicated))
                    if code is None or self.rules.fields[row.field].kind == Kind.TEXT:
                        mark = hash((type(row.adjudicated), row.adjudicated)) or 1
                        given = self.gold_text.setdefault((item, field_position), mark)
                        conflict = given != mark
                        self.item_gold[item] |= 1 << (16 * field_position)  # marks the item as adjudicated
                    else:
                        shift = 16 * field_position
                        given = (self.item_gold[item] >> shift) & 0xFFFF
                        if not given:
                            self.item_gold[item] |= code << shift
                        conflict = bool(given) and given != code
                    if conflict:
                        gold_conflicts.append((file_number, line, item, field_position))
            if not found and not any(p.file == source.name for p in problems):
                problems.append(ImportProblem(source.name, None, None, "the file holds no ratings"))
            self.digests.append(digest.digest())
        if duplicates or gold_conflicts:
            problems.extend(self._conflicts(checker, duplicates, gold_conflicts))
        if problems:
            order = {name: index for index, name in enumerate(names)}
            problems.sort(key=lambda p: (order.get(p.file, 0), p.line or 0))
            raise AnnotationImportRejected(problems)
        # What the counts need, then the per-item state only the first reading uses is let go.
        self.label_count = sum(mask.bit_count() for mask in self.item_labelled)
        self.overlap_count = max(1, *(mask.bit_count() for mask in self.item_labelled))
        self.adjudicated_count = sum(1 for gold in self.item_gold if gold)
        self.item_rated, self.item_labelled, self.item_gold = [], [], []
        self.gold_text, self.samples = {}, {}
        if judges:
            judge_problems[:0] = [
                ImportProblem(names[0], None, "rater", f"the judge {judge!r} rates nothing in these files")
                for judge in sorted(judges - set(self.raters.names))
            ]
        return judge_problems

    def _item(
        self,
        item: int,
        row: CheckedRow,
        file_number: int,
        line: int,
        names: list[str],
        problems: list[ImportProblem],
    ) -> None:
        """The item's and its prompt's rules: one model, prompt, response, prompt id, category and
        expected behaviour per item; one prompt per prompt id."""
        model = self.models.of(row.model)
        prompt = self.prompts.of(row.prompt_id)
        prompt_hash = hash(row.prompt)
        if row.category is None:
            category = -1
            self.uncategorised = True
        else:
            category = self.categories.of(row.category)
        expected = -1 if row.expected_behaviour is None else self.expected_names.index(row.expected_behaviour)
        response_hash = hash(row.response)
        if item == len(self.item_model):
            for column, value in (
                (self.item_model, model),
                (self.item_prompt, prompt),
                (self.item_prompt_hash, prompt_hash),
                (self.item_response_hash, response_hash),
                (self.item_category, category),
                (self.item_expected, expected),
                (self.item_first_file, file_number),
                (self.item_first_line, line),
                (self.item_last_file, file_number),
                (self.item_last_line, line),
            ):
                column.append(value)
            sample = self.samples.get((prompt, model), 0)
            self.samples[(prompt, model)] = sample + 1
            self.item_sample.append(sample)
            self.item_rated.append(0)
            self.item_labelled.append(0)
            self.item_gold.append(0)
        else:
            self.item_last_file[item] = file_number
            self.item_last_line[item] = line
            differs = []
            if model != self.item_model[item]:
                differs.append("model")
            if prompt_hash != self.item_prompt_hash[item]:
                differs.append("prompt")
            if response_hash != self.item_response_hash[item]:
                differs.append("response")
            if prompt != self.item_prompt[item]:
                differs.append("prompt_id")
            if category != self.item_category[item] and category != -1:
                differs.append("category")
            if expected != self.item_expected[item] and expected != -1:
                differs.append("expected_behaviour")
            if differs:
                where = f"{names[self.item_first_file[item]]}, line {self.item_first_line[item]}"
                problems.extend(
                    ImportProblem(
                        names[file_number], line, key, f"item {row.item!r} has a different {key} on {where}"
                    )
                    for key in differs
                )
        if prompt == len(self.prompt_hash):
            for column, value in (
                (self.prompt_hash, prompt_hash),
                (self.prompt_first_file, file_number),
                (self.prompt_first_line, line),
                (self.prompt_row_file, file_number),
                (self.prompt_row_line, line),
                (self.prompt_category, category),
                (self.prompt_expected, expected),
            ):
                column.append(value)
        else:
            if self.prompt_hash[prompt] != prompt_hash:
                where = f"{names[self.prompt_first_file[prompt]]}, line {self.prompt_first_line[prompt]}"
                problems.append(
                    ImportProblem(
                        names[file_number],
                        line,
                        "prompt_id",
                        f"prompt id {row.prompt_id!r} has a different prompt on {where}",
                    )
                )
            if self.prompt_expected[prompt] == -1 and expected != -1:
                # The prompt is created from its first row that gives an expected behaviour.
                self.prompt_row_file[prompt] = file_number
                self.prompt_row_line[prompt] = line
                self.prompt_category[prompt] = category
                self.prompt_expected[prompt] = expected

    def _conflicts(
        self,
        checker: RowChecker,
        duplicates: list[tuple[int, int, int, int, int]],
        gold_conflicts: list[tuple[int, int, int, int]],
    ) -> list[ImportProblem]:
        """The messages of ratings given twice and of adjudicated values that differ, which name the
        first row: found by reading the files again (only a refused import gets here)."""
        fields = self.field_names
        rating_keys = {(item, rater, field_position) for _, _, item, rater, field_position in duplicates}
        gold_keys = {(item, field_position) for _, _, item, field_position in gold_conflicts}
        first_rating: dict[tuple[int, int, int], tuple[int, int]] = {}
        first_gold: dict[tuple[int, int], tuple[int, int]] = {}
        field_number = {name: number for number, name in enumerate(fields)}
        for file_number, line, row in self.rows_again(checker, verify=False):
            item = self.items.index[row.item]
            rater = self.raters.index[row.rater]
            position = field_number[row.field]
            if (item, rater, position) in rating_keys:
                first_rating.setdefault((item, rater, position), (file_number, line))
            if row.adjudicated is not None and (item, position) in gold_keys:
                first_gold.setdefault((item, position), (file_number, line))
        names = self.file_names()
        problems = []
        for file_number, line, item, rater, position in duplicates:
            seen_file, seen_line = first_rating[(item, rater, position)]
            problems.append(
                ImportProblem(
                    names[file_number],
                    line,
                    "rater",
                    f"rater {self.raters.names[rater]!r} already rated {fields[position]!r} of item "
                    f"{self.items.names[item]!r} on {names[seen_file]}, line {seen_line}",
                )
            )
        for file_number, line, item, position in gold_conflicts:
            given_file, given_line = first_gold[(item, position)]
            problems.append(
                ImportProblem(
                    names[file_number],
                    line,
                    "adjudicated",
                    f"item {self.items.names[item]!r} has another adjudicated {fields[position]!r} "
                    f"on {names[given_file]}, line {given_line}",
                )
            )
        return problems

    # -- the second reading --

    def rows_again(
        self, checker: RowChecker | None = None, *, verify: bool = True
    ) -> Iterator[tuple[int, int, CheckedRow]]:
        """(file number, line, row) of every row, read again and checked again; raises
        ``FileChanged`` when a file is not the bytes the first reading checked."""
        checker = checker or RowChecker(self.rules)
        from_csv = self.file_format == "csv"
        for file_number, source in enumerate(self.sources):
            digest = hashlib.sha256()
            problems: list[ImportProblem] = []
            for line, record in read_records(
                source, self.file_format, digest, problems, plain=self.plain[file_number]
            ):
                row = checker.check(source.name, line, record, from_csv=from_csv, problems=problems)
                if row is None:
                    if verify:
                        raise FileChanged(source.name)
                    continue
                yield file_number, line, row
            if verify and (problems or digest.digest() != self.digests[file_number]):
                raise FileChanged(source.name)

    def ratings_again(self) -> Iterator[tuple[int, int, int, str, str, object, object, Mapping[str, object]]]:
        """(file number, line, item number, rater, field, value, adjudicated value, the record) of
        every row, read again without checking it again: the rows were checked on the first
        reading, and ``FileChanged`` is raised when a file is not the same bytes (at its end, so a
        caller writing as it goes does so in a transaction it lets roll back)."""
        checker = RowChecker(self.rules)
        resolve = checker._resolve
        fields = self.rules.fields
        items = self.items.index
        from_csv = self.file_format == "csv"
        for file_number, source in enumerate(self.sources):
            digest = hashlib.sha256()
            problems: list[ImportProblem] = []
            for line, record in read_records(
                source, self.file_format, digest, problems, plain=self.plain[file_number], again=True
            ):
                try:
                    item, rater, field_name = (
                        _text(record["item"]),
                        _text(record["rater"]),
                        _text(record["field"]),
                    )
                    spec = fields[field_name]
                    item_number = items[item]
                except (KeyError, AttributeError, TypeError):
                    raise FileChanged(source.name) from None
                value_ok, value = resolve(spec, record.get("value"), from_csv)
                gold_ok, gold = resolve(spec, record.get("adjudicated"), from_csv)
                if not (value_ok and gold_ok):
                    raise FileChanged(source.name)
                yield file_number, line, item_number, rater, field_name, value, gold, record
            if problems or digest.digest() != self.digests[file_number]:
                raise FileChanged(source.name)

    # -- what the import creates --

    def human_raters(self) -> list[str]:
        return sorted(name for name in self.raters.names if name not in self.judges)

    def labels(self) -> int:
        return self.label_count

    def overlap(self) -> int:
        return self.overlap_count

    def adjudicated(self) -> int:
        return self.adjudicated_count

    def category_slugs(self, default: str) -> list[str]:
        return sorted({*self.categories.names, *([default] if self.uncategorised else [])})


def _text(value: object) -> str:
    # The first reading allowed a string, or an integer for an id.
    return value.strip() if type(value) is str else str(int(value))  # type: ignore[call-overload]
