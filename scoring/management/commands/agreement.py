"""``manage.py agreement FILE``: recompute published agreement from a long-format ratings file.

Reads CSV or JSONL (item, rater, value, optional field) and never opens a database connection,
so anyone holding a released file can check the published figures.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from medharm_stats.agreement import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    FieldAgreement,
    field_agreement,
)
from medharm_stats.long_format import LongFormatError, read_long_format, table_for_field
from medharm_stats.result import Estimate

LABELS = {
    "percent_agreement": "Percent agreement",
    "cohen_kappa": "Cohen's kappa",
    "cohen_kappa_linear": "Cohen's kappa, linear weights",
    "cohen_kappa_quadratic": "Cohen's kappa, quadratic weights",
    "fleiss_kappa": "Fleiss' kappa",
    "krippendorff_alpha": "Krippendorff's alpha",
    "gwet_ac1": "Gwet's AC1",
}


class Command(BaseCommand):
    help = (
        "Agreement statistics (percent agreement, Cohen's, Fleiss' kappa, Krippendorff's alpha, "
        "Gwet's AC1, each with a 95% interval) from a long-format CSV or JSONL file of ratings."
    )
    # System checks may touch the database; this command must work without one.
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="CSV with a header, or JSONL; columns item, rater, value[, field]")
        parser.add_argument("--field", help="only this field (default: every field in the file)")
        parser.add_argument(
            "--level",
            choices=["nominal", "ordinal", "interval"],
            default="nominal",
            help="level of measurement for Krippendorff's alpha (default nominal)",
        )
        parser.add_argument(
            "--categories",
            help="comma-separated categories in their order (for weights, ordinal alpha and AC1)",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument(
            "--resamples",
            type=int,
            default=DEFAULT_RESAMPLES,
            help=f"bootstrap resamples for alpha's interval (default {DEFAULT_RESAMPLES})",
        )
        parser.add_argument(
            "--seed", type=int, default=DEFAULT_SEED, help=f"bootstrap seed (default {DEFAULT_SEED})"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["file"]
        categories = _categories(options["categories"])
        if options["resamples"] < 1:
            raise CommandError("--resamples must be at least 1")
        try:
            fields = read_long_format(path)
            if options["field"] is not None:
                if options["field"] not in fields:
                    known = ", ".join(fields)
                    raise CommandError(f"{path}: no field {options['field']!r} (fields: {known})")
                fields = {options["field"]: fields[options["field"]]}
            results = {
                name: field_agreement(
                    table_for_field(path, name, records, categories),
                    level=options["level"],
                    resamples=options["resamples"],
                    seed=options["seed"],
                )
                for name, records in fields.items()
            }
        except LongFormatError as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            payload = {"fields": {name: result.as_dict() for name, result in results.items()}}
            # allow_nan=False: a NaN reaching this point is a bug and must fail loudly.
            self.stdout.write(json.dumps(payload, indent=2, allow_nan=False))
            return
        for name, result in results.items():
            self.stdout.write(_table(name, result, options))


def _categories(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    names = [name.strip() for name in raw.split(",")]
    if not all(names):
        raise CommandError("--categories has an empty name")
    if len(set(names)) != len(names):
        raise CommandError("--categories lists a category twice")
    return names


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _row(label: str, estimate: Estimate) -> str:
    if estimate.value is None:
        return f"  {label:<34} {'-':>7}  {estimate.reason}"
    if estimate.ci_low is None:
        interval = estimate.ci_reason or "no interval"
    else:
        interval = f"{_number(estimate.ci_low)} to {_number(estimate.ci_high)}  ({estimate.interval})"
    return f"  {label:<34} {_number(estimate.value):>7}  {interval}"


def _table(name: str, result: FieldAgreement, options: dict[str, Any]) -> str:
    lines = [
        f"Field {name}: {result.n_items} items, {result.n_raters} raters "
        f"(alpha at the {options['level']} level)",
        f"  {'coefficient':<34} {'value':>7}  95% interval",
        _row(LABELS["percent_agreement"], result.percent_agreement),
    ]
    if result.cohen is not None:
        lines += [_row(LABELS[key], e) for key, e in result.cohen.coefficients().items()]
    lines += [
        _row(LABELS["fleiss_kappa"], result.fleiss_kappa),
        _row(LABELS["krippendorff_alpha"], result.krippendorff_alpha),
        _row(LABELS["gwet_ac1"], result.gwet_ac1),
    ]
    if result.cohen_pairs:
        lines.append("  Cohen's kappa per rater pair:")
        for pair in result.cohen_pairs:
            lines.append(f"    {pair.raters[0]} and {pair.raters[1]} ({pair.n_items} items in common)")
            lines += ["  " + _row(LABELS[key], e) for key, e in pair.coefficients().items()]
    return "\n".join(lines) + "\n"
