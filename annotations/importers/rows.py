"""One row of an annotation file checked against the rubric's fields and the import's rules."""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from annotations.importers.rules import (
    COLUMN_SET,
    MEMO_LIMIT,
    TEXT_PLAN,
    CheckedRow,
    ImportRules,
    prompt_key,
    unknown_name,
)
from annotations.rubric_schema import FieldSpec, Kind

# The same text decoding and CSV/JSONL reading rules as every import (core.imports).
from core.imports import ImportProblem

# --- one row -----------------------------------------------------------------------------------------


class RowChecker:
    """Checks one row against the rules; each raw value's canonical form (or its problem) is worked
    out once per field and then looked up, so a row costs a few dictionary look-ups."""

    def __init__(self, rules: ImportRules) -> None:
        self.rules = rules
        self.fields = rules.fields
        self._resolved: dict[tuple[str, bool], dict[tuple[type, object], tuple[bool, object]]] = {}
        self._categories: dict[str, bool] = {}
        self._last_prompt: tuple[str, str] = ("", "")

    def check(
        self,
        name: str,
        line: int,
        record: Mapping[str, object],
        *,
        from_csv: bool,
        problems: list[ImportProblem],
    ) -> CheckedRow | None:
        fast = self._check_fast(record, from_csv)
        if fast is not None:
            return fast
        before = len(problems)
        if not COLUMN_SET.issuperset(record):
            for key in record:
                if key not in COLUMN_SET:
                    problems.append(ImportProblem(name, line, key, unknown_name(key, "field")))
        get = record.get
        text: dict[str, str] = {}
        for key, required, verbatim, limit, id_key in TEXT_PLAN:
            value = get(key)
            if value is None:
                if required:
                    problems.append(ImportProblem(name, line, key, "required field is missing"))
                continue
            if type(value) is not str:
                if id_key and isinstance(value, int) and not isinstance(value, bool):
                    value = str(value)  # numeric ids are common in other tools' exports
                else:
                    problems.append(ImportProblem(name, line, key, "must be a string"))
                    continue
            if "\x00" in value:
                problems.append(
                    ImportProblem(name, line, key, "contains a NUL character, which cannot be stored")
                )
                continue
            kept: str = value if verbatim else value.strip()
            text[key] = kept
            # isspace, not strip: a long prompt or response is scanned, never copied.
            if required and key != "response" and (not kept or kept.isspace()):
                problems.append(ImportProblem(name, line, key, "required field is empty"))
            if limit is not None and len(kept) > limit:
                problems.append(ImportProblem(name, line, key, f"longer than {limit} characters"))
        if "value" not in record:
            problems.append(ImportProblem(name, line, "value", "required field is missing"))

        field_name = text.get("field", "")
        spec = self.fields.get(field_name)
        if field_name and spec is None:
            close = difflib.get_close_matches(field_name, list(self.fields), n=1)
            hint = (
                f" (did you mean {close[0]!r}?)" if close else f"; the rubric has: {', '.join(self.fields)}"
            )
            problems.append(ImportProblem(name, line, "field", f"unknown rubric field {field_name!r}{hint}"))
        value = adjudicated = None
        if spec is not None:
            ok, value = self._resolve(spec, get("value"), from_csv)
            if not ok:
                problems.append(ImportProblem(name, line, "value", str(value)))
                value = None
            ok, adjudicated = self._resolve(spec, get("adjudicated"), from_csv)
            if not ok:
                problems.append(ImportProblem(name, line, "adjudicated", str(adjudicated)))
                adjudicated = None
        category = text.get("category") or None
        if category:
            exists = self._categories.get(category)
            if exists is None:
                exists = self._categories[category] = bool(self.rules.category_exists(category))
            if not exists:
                problems.append(ImportProblem(name, line, "category", f"unknown category {category!r}"))
        expected = text.get("expected_behaviour") or None
        if expected and expected not in self.rules.expected_choices:
            problems.append(
                ImportProblem(
                    name,
                    line,
                    "expected_behaviour",
                    f"{expected!r} is not one of: {', '.join(self.rules.expected_choices)}",
                )
            )
        if len(problems) > before:
            return None
        prompt = text["prompt"]
        prompt_id = text.get("prompt_id")
        if not prompt_id:
            last_prompt, last_key = self._last_prompt
            if prompt != last_prompt:
                last_key = prompt_key(prompt)
                self._last_prompt = (prompt, last_key)
            prompt_id = last_key
        return CheckedRow(
            item=text["item"],
            model=text["model"],
            prompt=prompt,
            prompt_id=prompt_id,
            response=text.get("response", ""),
            category=category,
            expected_behaviour=expected,
            rater=text["rater"],
            field=field_name,
            value=value,
            adjudicated=adjudicated,
        )

    def _check_fast(self, record: Mapping[str, object], from_csv: bool) -> CheckedRow | None:
        """The row of a record that breaks no rule, without a problem list: what ``check`` returns
        for it. ``None`` for any record this path does not take whole (``check`` then reads it the
        long way and says what is wrong, if anything is)."""
        if not COLUMN_SET.issuperset(record) or "value" not in record:
            return None
        get = record.get
        item, model, prompt, response, rater, field_raw = (
            get("item"),
            get("model"),
            get("prompt"),
            get("response"),
            get("rater"),
            get("field"),
        )
        category, expected, prompt_id = get("category"), get("expected_behaviour"), get("prompt_id")
        if not (
            type(item) is str
            and type(model) is str
            and type(prompt) is str
            and type(response) is str
            and type(rater) is str
            and type(field_raw) is str
            and (category is None or type(category) is str)
            and (expected is None or type(expected) is str)
            and (prompt_id is None or type(prompt_id) is str)
        ):
            return None
        if (
            "\x00" in item
            or "\x00" in model
            or "\x00" in prompt
            or "\x00" in response
            or "\x00" in rater
            or "\x00" in field_raw
            or (category is not None and "\x00" in category)
            or (expected is not None and "\x00" in expected)
            or (prompt_id is not None and "\x00" in prompt_id)
        ):
            return None
        item, model, rater = item.strip(), model.strip(), rater.strip()
        spec = self.fields.get(field_raw.strip())
        if (
            spec is None
            or not item
            or not model
            or not rater
            or not prompt
            or prompt.isspace()
            or len(item) > 200
            or len(model) > 200
            or len(rater) > 120
        ):
            return None
        if category is not None:
            category = category.strip() or None
            if category is not None:
                if len(category) > 80:
                    return None
                exists = self._categories.get(category)
                if exists is None:
                    exists = self._categories[category] = bool(self.rules.category_exists(category))
                if not exists:
                    return None
        if expected is not None:
            expected = expected.strip() or None
            if expected is not None and (len(expected) > 16 or expected not in self.rules.expected_choices):
                return None
        if prompt_id is not None:
            prompt_id = prompt_id.strip()
            if len(prompt_id) > 200:
                return None
        value_ok, value = self._resolve(spec, get("value"), from_csv)
        gold_ok, gold = self._resolve(spec, get("adjudicated"), from_csv)
        if not (value_ok and gold_ok):
            return None
        if not prompt_id:
            last_prompt, prompt_id = self._last_prompt
            if prompt != last_prompt:
                prompt_id = prompt_key(prompt)
                self._last_prompt = (prompt, prompt_id)
        return CheckedRow(
            item, model, prompt, prompt_id, response, category, expected, rater, spec.name, value, gold
        )

    def _resolve(self, spec: FieldSpec, raw: object, from_csv: bool) -> tuple[bool, object]:
        """(True, canonical value or None) or (False, the problem's message)."""
        table = self._resolved.get((spec.name, from_csv))
        if table is None:
            table = self._resolved[(spec.name, from_csv)] = {}
        try:
            key: tuple[type, object] | None = (raw.__class__, raw)
            found = table.get(key)  # type: ignore[arg-type]
        except TypeError:  # a list or an object: not a value, and not hashable
            key = found = None
        if found is not None:
            return found
        result = self._resolve_once(spec, raw, from_csv)
        if key is not None and spec.kind != Kind.TEXT and len(table) < MEMO_LIMIT:
            table[key] = result
        return result

    def _resolve_once(self, spec: FieldSpec, raw: object, from_csv: bool) -> tuple[bool, object]:
        if from_csv and isinstance(raw, str) and not raw.strip():
            raw = None
        if isinstance(raw, str) and raw.strip() in self.rules.missing_values:
            raw = None
        try:
            parsed = spec.parse(raw)
        except ValueError as exc:
            # Prose where a label belongs (a judge's explanation) is often "not rated".
            prose = isinstance(raw, str) and " " in raw.strip() and any(c.isalpha() for c in raw)
            hint = " (list it in the missing values if it means 'not rated')" if prose else ""
            return False, f"{spec.name}: {exc}{hint}"
        if parsed is not None and spec.is_missing(parsed):
            parsed = None
        return True, parsed
