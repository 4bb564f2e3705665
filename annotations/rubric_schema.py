"""Rubric fields as plain data: checking a label's values, consensus and disagreement. No Django.

A value is stored in its canonical JSON type: binary fields hold ``true``/``false``, nominal fields
the option's string value, ordinal fields the option's integer value, interval fields the option's
number, text fields a string. A field may declare one of its options as meaning "missing" (an
"unclear" or "not applicable" point): a label giving it is kept, but the figures treat the field
as unrated and the agreement statistics leave that option out of the declared categories.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import cast

TEXT_MAX_LENGTH = 5000
# Option keys by position: 1-9, 0 for a tenth, then letters without the labelling screen's command
# letters (F flag, G guidelines, R rationale, S skip, U undo).
OPTION_KEYS = "1234567890" + "".join(c for c in "abcdehijklmnopqtvwxyz")
COMMAND_KEYS = frozenset("fgrsu")

_TRUE_WORDS = frozenset({"yes", "y", "true", "t", "1"})
_FALSE_WORDS = frozenset({"no", "n", "false", "f", "0"})


class Kind(StrEnum):
    BINARY = "binary"
    NOMINAL = "nominal"
    ORDINAL = "ordinal"
    INTERVAL = "interval"
    TEXT = "text"


@dataclass(frozen=True)
class Option:
    value: bool | int | float | str
    label: str

    @property
    def token(self) -> str:
        """The option's value as a form control submits it."""
        if isinstance(self.value, bool):
            return "yes" if self.value else "no"
        return str(self.value)


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str
    kind: Kind
    options: tuple[Option, ...] = ()
    required: bool = True
    primary: bool = False
    help_text: str = ""
    # The option value that means "missing" (None: every option is a rating).
    missing: bool | int | float | str | None = None

    @property
    def is_categorical(self) -> bool:
        return self.kind != Kind.TEXT

    @property
    def is_ordered(self) -> bool:
        return self.kind in (Kind.ORDINAL, Kind.INTERVAL)

    def is_missing(self, value: object) -> bool:
        """Whether ``value`` is the field's declared "missing" option."""
        return self.missing is not None and value == self.missing and type(value) is type(self.missing)

    @property
    def rating_options(self) -> tuple[Option, ...]:
        """The options that are ratings: the declared categories of the agreement statistics."""
        return tuple(option for option in self.options if not self.is_missing(option.value))

    def key_for(self, position: int, option: Option | None = None) -> str:
        """The key that picks the option at ``position``, the same model on every scale: the first
        option is always ``1``, the tenth ``0``, and letters follow (never a command letter)."""
        return OPTION_KEYS[position] if position < len(OPTION_KEYS) else ""

    def option_label(self, value: object) -> str:
        for option in self.options:
            if option.value == value and type(option.value) is type(value):
                return option.label
        return "" if value is None else str(value)

    def parse(self, raw: object) -> bool | int | float | str | None:
        """The canonical value of ``raw`` (form text, JSON or a cell), ``None`` when left empty.

        Raises ``ValueError`` with a message a person can act on.
        """
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        if self.kind == Kind.TEXT:
            if not isinstance(raw, str):
                raise ValueError("must be text")
            if "\x00" in raw:
                raise ValueError("contains a NUL character")
            if len(raw) > TEXT_MAX_LENGTH:
                raise ValueError(f"is longer than {TEXT_MAX_LENGTH} characters")
            return raw.strip()
        value: bool | int | float | str
        if self.kind == Kind.BINARY:
            value = _parse_binary(raw)
        elif self.kind == Kind.ORDINAL:
            value = _parse_int(raw)
        elif self.kind == Kind.INTERVAL:
            value = _parse_number(raw)
        else:
            if not isinstance(raw, str | int) or isinstance(raw, bool):
                raise ValueError(f"must be one of: {self.allowed()}")
            value = str(raw).strip()
        for option in self.options:
            # An interval point may be written 2 or 2.0: the declared option's type is canonical.
            if option.value == value and (
                type(option.value) is type(value)
                or (self.kind == Kind.INTERVAL and not isinstance(value, bool))
            ):
                return option.value
        raise ValueError(f"{raw!r} is not one of: {self.allowed()}")

    def allowed(self) -> str:
        return ", ".join(option.token for option in self.options)


def _parse_binary(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        word = raw.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise ValueError(f"{raw!r} is not yes or no")


def _parse_int(raw: object) -> int:
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not a point of the scale")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str):
        text = raw.strip()
        if text.lstrip("-").isdigit():
            return int(text)
    raise ValueError(f"{raw!r} is not a point of the scale")


def _parse_number(raw: object) -> int | float:
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not a point of the scale")
    if isinstance(raw, int | float):
        return raw
    if isinstance(raw, str):
        try:
            number = float(raw.strip())
        except ValueError:
            pass
        else:
            return int(number) if number.is_integer() else number
    raise ValueError(f"{raw!r} is not a point of the scale")


@dataclass
class CheckedValues:
    values: dict[str, bool | int | float | str]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def check_values(specs: Sequence[FieldSpec], raw: Mapping[str, object]) -> CheckedValues:
    """Every field's canonical value, and an error per field that is missing or wrong.

    Unknown keys are errors too: a typo in an API client must not silently drop a rating.
    """
    names = {spec.name for spec in specs}
    checked = CheckedValues(values={})
    for key in raw:
        if key not in names:
            checked.errors[key] = f"unknown field; this rubric has: {', '.join(sorted(names))}"
    for spec in specs:
        try:
            value = spec.parse(raw.get(spec.name))
        except ValueError as exc:
            checked.errors[spec.name] = str(exc)
            continue
        if value is None:
            if spec.required:
                checked.errors[spec.name] = "required"
            continue
        checked.values[spec.name] = value
    return checked


# --- agreement within one item ------------------------------------------------------------------


@dataclass(frozen=True)
class ItemAgreement:
    """How far an item's labels agree: ``score`` is the mean, over categorical fields rated by two
    or more annotators, of the share of annotator pairs giving the same value (1.0 = unanimous)."""

    score: float | None
    disputed: bool
    reasons: tuple[str, ...]


def item_agreement(
    specs: Sequence[FieldSpec],
    labels: Sequence[Mapping[str, object]],
    *,
    on_primary: bool,
    ordinal_spread: int | None,
) -> ItemAgreement:
    """Agreement of ``labels`` (each a label's values) and whether the campaign's rule calls it a
    disagreement: any difference on the primary field, or an ordinal spread of ``ordinal_spread``
    points or more."""
    shares: list[float] = []
    reasons: list[str] = []
    for spec in specs:
        if not spec.is_categorical:
            continue
        values = [
            label[spec.name]
            for label in labels
            if label.get(spec.name) is not None and not spec.is_missing(label[spec.name])
        ]
        if len(values) < 2:
            continue
        pairs = list(itertools.combinations(values, 2))
        shares.append(sum(a == b for a, b in pairs) / len(pairs))
        if spec.primary and on_primary and len(set(map(repr, values))) > 1:
            reasons.append(f"{spec.label}: annotators differ")
        if spec.is_ordered and ordinal_spread is not None:
            spread = max(values) - min(values)  # type: ignore[operator,type-var]
            if spread >= ordinal_spread:
                reasons.append(f"{spec.label}: spread of {spread} points")
    score = sum(shares) / len(shares) if shares else None
    return ItemAgreement(score=score, disputed=bool(reasons), reasons=tuple(reasons))


def consensus(specs: Sequence[FieldSpec], labels: Sequence[Mapping[str, object]]) -> dict[str, object]:
    """The value a strict majority of the labels gives, per categorical field; fields without one
    are left out (an undisputed item can still split on a secondary field)."""
    result: dict[str, object] = {}
    for spec in specs:
        if not spec.is_categorical:
            continue
        values = [
            label[spec.name]
            for label in labels
            if label.get(spec.name) is not None and not spec.is_missing(label[spec.name])
        ]
        if not values:
            continue
        counts = Counter(repr(v) for v in values)
        token, count = counts.most_common(1)[0]
        if count * 2 > len(values):
            result[spec.name] = next(v for v in values if repr(v) == token)
    return result


def pseudonyms(count: int) -> list[str]:
    """ "Annotator A", "Annotator B", ... ("Annotator AA" after Z)."""
    names = []
    for index in range(count):
        letters = ""
        number = index
        while True:
            letters = chr(ord("A") + number % 26) + letters
            number = number // 26 - 1
            if number < 0:
                break
        names.append(f"Annotator {letters}")
    return names


def spec_from_dict(data: Mapping[str, object]) -> FieldSpec:
    """A ``FieldSpec`` from the JSON a maintainer sends to define a rubric field."""
    kind = Kind(str(data["kind"]))
    options: list[Option] = []
    # JSON from the maintainer: a list of options (the loop refuses items that are not objects).
    for raw in cast("Iterable[object]", data.get("options") or []):
        if not isinstance(raw, Mapping):
            raise ValueError("each option must be an object with value and label")
        options.append(Option(value=raw["value"], label=str(raw.get("label", raw["value"]))))
    return FieldSpec(
        name=str(data["name"]),
        label=str(data.get("label") or data["name"]),
        kind=kind,
        options=tuple(options),
        required=bool(data.get("required", True)),
        primary=bool(data.get("primary", False)),
        help_text=str(data.get("help_text", "")),
        missing=cast("bool | int | float | str | None", data.get("missing")),
    )


def option_problems(spec: FieldSpec) -> list[str]:
    """What is wrong with a field's options for its kind (empty when it is well formed)."""
    problems = []
    values = [option.value for option in spec.options]
    if spec.kind == Kind.TEXT and values:
        problems.append("a text field has no options")
    if spec.kind == Kind.BINARY and sorted(values, key=repr) != [False, True]:
        problems.append("a binary field has exactly two options, true and false")
    if spec.kind == Kind.NOMINAL and (len(values) < 2 or not all(isinstance(v, str) and v for v in values)):
        problems.append("a nominal field has two or more options with text values")
    if spec.kind == Kind.ORDINAL and (
        len(values) < 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in values)
        or values != sorted(values)
    ):
        problems.append("an ordinal field has two or more integer points, in increasing order")
    if spec.kind == Kind.INTERVAL and (
        len(values) < 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        or values != sorted(values)
    ):
        problems.append("an interval field has two or more numeric points, in increasing order")
    if len({repr(v) for v in values}) != len(values):
        problems.append("option values repeat")
    if spec.missing is not None and not any(
        v == spec.missing and type(v) is type(spec.missing) for v in values
    ):
        problems.append(f"the missing value {spec.missing!r} is not one of the options")
    if spec.primary and spec.kind == Kind.TEXT:
        problems.append("the primary field must be binary, nominal or ordinal")
    return problems


def rubric_problems(specs: Iterable[FieldSpec]) -> list[str]:
    specs = list(specs)
    problems = [f"{spec.name}: {problem}" for spec in specs for problem in option_problems(spec)]
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        problems.append("field names repeat")
    if sum(spec.primary for spec in specs) != 1:
        problems.append("a rubric has exactly one primary field")
    return problems
