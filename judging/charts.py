"""Audit charts as server-rendered SVG (no script, no style attribute): the confusion matrix and
per-model bias with interval bars around zero. No Django import."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from medharm_stats.judging import BiasReport, JudgeAudit
from scoring.charts import CI, GRID, MUTED, TEXT, Cell, _open, heatmap


def _label(value: object) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return str(value)


def confusion_chart(audit: JudgeAudit, *, field: str) -> str:
    """Rows: clinicians; columns: judge; each cell the count, shaded by its share of the row."""
    names = [_label(c) for c in audit.categories]
    cells = {}
    for i, row in enumerate(audit.confusion):
        total = sum(row)
        for j, count in enumerate(row):
            share = count / total if total else None
            cells[(i, j)] = Cell(
                value=(1 - share) if (share is not None and i == j) else share,
                text=str(count),
                title=f"clinicians {names[i]}, judge {names[j]}: {count} of {total}",
            )
    return heatmap(
        [f"clinicians: {n}" for n in names],
        [f"judge: {n}" for n in names],
        cells,
        title=f"Confusion matrix of {field} (rows clinicians, columns judge)",
        chart_id=f"confusion-{field}",
        row_label_width=200,
        column_label_height=90,
    )


def bias_chart(report: BiasReport, *, field: str, half_range: float = 0.5) -> str:
    """Per model: judge rate - clinician rate as a dot with its 95% paired interval, around zero."""
    models = report.models
    label_w, plot_w, note_w, row_h, top, bottom = 220, 420, 170, 30, 16, 34
    width, height = label_w + plot_w + note_w + 20, top + row_h * max(1, len(models)) + bottom
    x0 = label_w + 10

    def x(value: float) -> float:
        clipped = max(-half_range, min(half_range, value))
        return x0 + (clipped + half_range) / (2 * half_range) * plot_w

    parts = _open(
        width, height, f"Bias of the judge on {field} per model (judge rate minus clinician rate)",
        f"{len(models)} models, each with its 95% interval from a paired bootstrap over queries.",
        "bias", f"bias-{field}",
    )  # fmt: skip
    axis_y = top + row_h * max(1, len(models))
    for k in range(5):
        tick = -half_range + k * half_range / 2
        tx = f"{x(tick):.1f}"
        stroke = TEXT if tick == 0 else GRID
        parts.append(
            f'<line x1="{tx}" y1="{top - 4}" x2="{tx}" y2="{axis_y}" stroke="{stroke}" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{tx}" y="{axis_y + 16}" text-anchor="middle" fill="{MUTED}" font-size="11">'
            f"{tick:+.2f}</text>"
        )
    for index, model in enumerate(models):
        y = top + row_h * index
        cy = y + row_h / 2
        bias = model.bias
        parts.append(
            f'<text x="{label_w}" y="{y + 19}" text-anchor="end" fill="{TEXT}" class="row-label">'
            f"{escape(model.model)}</text>"
        )
        if bias.value is None:
            continue
        summary = f"{model.model}: bias {bias.value:+.3f}"
        if bias.ci_low is not None and bias.ci_high is not None:
            summary += f" (95% CI {bias.ci_low:+.3f} to {bias.ci_high:+.3f})"
            lo, hi = f"{x(bias.ci_low):.1f}", f"{x(bias.ci_high):.1f}"
            parts.append(
                f'<g class="ci" stroke="{CI}" stroke-width="2">'
                f'<line x1="{lo}" y1="{cy:.1f}" x2="{hi}" y2="{cy:.1f}"/>'
                f'<line x1="{lo}" y1="{cy - 6:.1f}" x2="{lo}" y2="{cy + 6:.1f}"/>'
                f'<line x1="{hi}" y1="{cy - 6:.1f}" x2="{hi}" y2="{cy + 6:.1f}"/></g>'
            )
        excludes_zero = bias.ci_low is not None and (bias.ci_low > 0 or (bias.ci_high or 0) < 0)
        fill = "#b2182b" if excludes_zero else "#1d5a85"
        parts.append(
            f'<circle class="bias-point" cx="{x(bias.value):.1f}" cy="{cy:.1f}" r="6" fill="{fill}">'
            f"<title>{escape(summary)}</title></circle>"
        )
        parts.append(
            f'<text x="{x0 + plot_w + 12}" y="{y + 19}" fill="{TEXT}" class="bar-value">{bias.value:+.3f}'
            f'<tspan fill="{MUTED}" font-size="11"> n={model.n}</tspan></text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def flips_text(flips: Sequence[tuple[str, str]]) -> list[str]:
    return [f"clinicians rank {a} above {b}; the judge ranks {b} above {a}" for a, b in flips]
