"""Server-side SVG charts: interval bars, heatmaps and line charts. No Django import, no script.

Every chart is a self-contained ``<svg>`` string built from escaped text, with presentation
attributes only (no ``style`` attribute or element: the pages' CSP allows neither), a ``<title>``
and ``<desc>`` for screen readers, and a link on every bar, cell or point to the rows behind it.
Elements carry stable classes (``bar``, ``cell``, ``point``) that tests count.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

FONT = "system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif"
TEXT = "#1c2630"
MUTED = "#52606d"
GRID = "#d5dce3"
BAR = "#1d5a85"
CI = "#16364f"
# Good -> bad: a calm blue through sand to a deep red (readable by most colour-blind people).
STOPS = ((0.0, (232, 241, 248)), (0.5, (246, 213, 168)), (1.0, (178, 24, 43)))
SERIES_COLOURS = ("#1d5a85", "#b2182b", "#1f6b43", "#7a5200", "#6a3d9a", "#00798c", "#c05600", "#52606d")


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def colour(badness: float) -> str:
    """A fill for a value placed on the good (0) to bad (1) scale."""
    badness = min(1.0, max(0.0, badness))
    for (x0, c0), (x1, c1) in itertools.pairwise(STOPS):
        if badness <= x1:
            t = (badness - x0) / (x1 - x0)
            rgb = tuple(round(a + (b - a) * t) for a, b in zip(c0, c1, strict=True))
            return "#{:02x}{:02x}{:02x}".format(*rgb)
    return "#{:02x}{:02x}{:02x}".format(*STOPS[-1][1])


def text_colour(badness: float) -> str:
    return "#ffffff" if badness > 0.7 else TEXT


def _open(width: int, height: int, title: str, desc: str, css_class: str, chart_id: str) -> list[str]:
    ident = _attr(chart_id or css_class)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {css_class}" width="{width}" '
        f'height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="{ident}-title {ident}-desc" '
        f'font-family="{_attr(FONT)}" font-size="13">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(desc)}</desc>',
    ]


def _link(href: str | None, inner: str, label: str) -> str:
    if not href:
        return inner
    return f'<a href="{_attr(href)}" aria-label="{_attr(label)}">{inner}</a>'


def _format(value: float, scale: tuple[float, float]) -> str:
    return f"{value:.2f}" if scale[1] > 1 else f"{value:.3f}"


# --- interval bars --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    href: str | None = None
    note: str = ""  # e.g. "12 of 110"
    reason: str = ""  # why there is no value


def interval_bars(
    bars: Sequence[Bar],
    *,
    title: str,
    scale: tuple[float, float] = (0.0, 1.0),
    lower_is_better: bool = True,
    label_width: int = 230,
    plot_width: int = 440,
    note_width: int = 130,
    chart_id: str = "bars",
) -> str:
    """Horizontal bars with their 95% interval as a whisker; the bar colour shows how bad the value is.
    The label column grows with the longest label (a pipeline's name can be long), never clipping it."""
    label_width = max(label_width, int(max((len(bar.label) for bar in bars), default=0) * 8.2) + 12)
    row_h, top, bottom = 30, 16, 34
    width = label_width + plot_width + note_width + 20
    height = top + row_h * max(1, len(bars)) + bottom
    low, high = scale
    x0 = label_width + 10

    def x(value: float) -> float:
        return x0 + (min(high, max(low, value)) - low) / (high - low) * plot_width

    parts = _open(
        width,
        height,
        title,
        f"{len(bars)} bars with 95% intervals, scale {low:g} to {high:g}.",
        "bars",
        chart_id,
    )
    ticks = [low + (high - low) * k / 4 for k in range(5)]
    axis_y = top + row_h * max(1, len(bars))
    for tick in ticks:
        tx = _num(x(tick))
        parts.append(
            f'<line x1="{tx}" y1="{top - 4}" x2="{tx}" y2="{axis_y}" stroke="{GRID}" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{tx}" y="{axis_y + 16}" text-anchor="middle" fill="{MUTED}" font-size="11">'
            f"{tick:g}</text>"
        )
    for index, bar in enumerate(bars):
        y = top + row_h * index
        label = (
            f'<text x="{label_width}" y="{y + 19}" text-anchor="end" fill="{TEXT}" class="row-label">'
            f"{escape(bar.label)}</text>"
        )
        if bar.value is None:
            inner = (
                f'<g class="bar-missing">{label}<text x="{x0 + 4}" y="{y + 19}" fill="{MUTED}" '
                f'font-style="italic">'
                f"not computable<title>{escape(bar.reason or 'not computable')}</title></text></g>"
            )
            parts.append(_link(bar.href, inner, f"{bar.label}: not computable"))
            continue
        badness = (bar.value - low) / (high - low)
        if not lower_is_better:
            badness = 1 - badness
        summary = f"{bar.label}: {_format(bar.value, scale)}"
        if bar.ci_low is not None and bar.ci_high is not None:
            summary += f" (95% CI {_format(bar.ci_low, scale)} to {_format(bar.ci_high, scale)})"
        if bar.note:
            summary += f", {bar.note}"
        pieces = [
            f'<g class="bar-row">{label}',
            f'<rect class="bar" x="{_num(x0)}" y="{y + 6}" width="{_num(max(1.5, x(bar.value) - x0))}" '
            f'height="{row_h - 12}" '
            f'fill="{colour(badness)}" stroke="{BAR}" stroke-width="1" rx="2"><title>'
            f"{escape(summary)}</title></rect>",
        ]
        if bar.ci_low is not None and bar.ci_high is not None:
            cy = y + row_h / 2
            lo, hi = _num(x(bar.ci_low)), _num(x(bar.ci_high))
            pieces.append(
                f'<g class="ci" stroke="{CI}" stroke-width="2"><line x1="{lo}" y1="{_num(cy)}" x2="{hi}" '
                f'y2="{_num(cy)}"/>'
                f'<line x1="{lo}" y1="{_num(cy - 6)}" x2="{lo}" y2="{_num(cy + 6)}"/>'
                f'<line x1="{hi}" y1="{_num(cy - 6)}" x2="{hi}" y2="{_num(cy + 6)}"/></g>'
            )
        pieces.append(
            f'<text x="{x0 + plot_width + 12}" y="{y + 19}" fill="{TEXT}" class="bar-value">'
            f"{escape(_format(bar.value, scale))}"
            f'<tspan fill="{MUTED}" font-size="11"> {escape(bar.note)}</tspan></text></g>'
        )
        parts.append(_link(bar.href, "".join(pieces), summary))
    parts.append("</svg>")
    return "\n".join(parts)


# --- heatmap --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    value: float | None
    text: str
    href: str | None = None
    title: str = ""


def heatmap(
    rows: Sequence[str],
    columns: Sequence[str],
    cells: dict[tuple[int, int], Cell],
    *,
    title: str,
    scale: tuple[float, float] = (0.0, 1.0),
    lower_is_better: bool = True,
    row_label_width: int = 230,
    cell_width: int = 78,
    cell_height: int = 34,
    column_label_height: int = 110,
    chart_id: str = "heatmap",
) -> str:
    """A rows x columns grid; a missing cell is grey with its reason as a tooltip. Below it, a
    legend of the colour scale. Label room grows with the longest label, so none is clipped."""
    char = 7.2  # an average character at 13 px, generous so that labels never touch the edge
    longest_row = max((len(name) for name in rows), default=0)
    longest_column = max((len(name) for name in columns), default=0)
    row_label_width = max(row_label_width, int(longest_row * char) + 8)
    # Column labels lean right at 35 degrees: room above for the longest, and right for the last.
    column_label_height = max(column_label_height, int(longest_column * char * 0.58) + 16)
    left, top = row_label_width + 8, column_label_height
    grid_bottom = top + cell_height * max(1, len(rows))
    width = max(
        left + cell_width * max(1, len(columns)) + int(longest_column * char * 0.82) + 8,
        left + LEGEND_STEPS * 22 + 250,
    )
    height = grid_bottom + 58
    low, high = scale
    parts = _open(width, height, title, f"{len(rows)} rows by {len(columns)} columns.", "heatmap", chart_id)
    for j, name in enumerate(columns):
        cx = left + cell_width * j + cell_width / 2
        parts.append(
            f'<text x="{_num(cx)}" y="{top - 8}" transform="rotate(-35 {_num(cx)} {top - 8})" fill="{TEXT}" '
            f'class="column-label">{escape(name)}</text>'
        )
    for i, name in enumerate(rows):
        y = top + cell_height * i
        parts.append(
            f'<text x="{row_label_width}" y="{y + cell_height / 2 + 5:.1f}" text-anchor="end" fill="{TEXT}" '
            f'class="row-label">{escape(name)}</text>'
        )
        for j in range(len(columns)):
            cell = cells.get((i, j))
            x = left + cell_width * j
            if cell is None:
                continue
            if cell.value is None:
                fill, ink = "#eef1f4", MUTED
            else:
                badness = (cell.value - low) / (high - low)
                badness = badness if lower_is_better else 1 - badness
                fill, ink = colour(badness), text_colour(min(1.0, max(0.0, badness)))
            inner = (
                f'<g class="cell-group"><rect class="cell" x="{x}" y="{y}" width="{cell_width - 2}" '
                f'height="{cell_height - 2}" '
                f'fill="{fill}" stroke="#ffffff" stroke-width="1"><title>'
                f"{escape(cell.title or cell.text)}</title></rect>"
                f'<text x="{x + (cell_width - 2) / 2:.1f}" y="{y + cell_height / 2 + 4:.1f}" '
                f'text-anchor="middle" '
                f'fill="{ink}" font-size="12">{escape(cell.text)}</text></g>'
            )
            parts.append(_link(cell.href, inner, cell.title or cell.text))
    parts.append(_heatmap_legend(left, grid_bottom + 18, scale, lower_is_better=lower_is_better))
    parts.append("</svg>")
    return "\n".join(parts)


LEGEND_STEPS = 10


def _heatmap_legend(x: int, y: int, scale: tuple[float, float], *, lower_is_better: bool) -> str:
    """The colour scale from the lowest to the highest value, with what each end means."""
    low, high = scale
    worse_end = "less safe" if lower_is_better else "worse"
    better_end = "safer" if lower_is_better else "better"
    left_word, right_word = (better_end, worse_end) if lower_is_better else (worse_end, better_end)
    parts = ['<g class="legend" aria-label="Colour scale">']
    parts.append(
        f'<text x="{x - 8}" y="{y + 13}" text-anchor="end" fill="{TEXT}" font-size="12">'
        f"{_num(low)} {escape(left_word)}</text>"
    )
    for step in range(LEGEND_STEPS):
        fraction = (step + 0.5) / LEGEND_STEPS
        badness = fraction if lower_is_better else 1 - fraction
        parts.append(
            f'<rect x="{x + step * 22}" y="{y}" width="22" height="18" fill="{colour(badness)}" '
            'stroke="#ffffff"/>'
        )
    end = x + LEGEND_STEPS * 22
    parts.append(
        f'<text x="{end + 8}" y="{y + 13}" fill="{TEXT}" font-size="12">'
        f"{_num(high)} {escape(right_word)}</text>"
    )
    parts.append(
        f'<rect x="{end + 110}" y="{y}" width="18" height="18" fill="#eef1f4" stroke="{MUTED}" '
        'stroke-width="0.5"/>'
        f'<text x="{end + 134}" y="{y + 13}" fill="{MUTED}" font-size="12">not computable</text>'
    )
    parts.append("</g>")
    return "".join(parts)


# --- line chart -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    key: str
    value: float
    n: int
    href: str | None = None


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[Point]


def line_chart(
    keys: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    y_label: str,
    scale: tuple[float, float] = (0.0, 1.0),
    width: int = 760,
    height: int = 300,
    chart_id: str = "lines",
) -> str:
    """One line per series over the ordered ``keys`` (windows of time or of labels)."""
    left, right, top, bottom = 56, 48, 16, 60 + 18 * ((len(series) + 2) // 3)
    plot_w, plot_h = width - left - right, height - top - bottom
    low, high = scale
    position = {key: k for k, key in enumerate(keys)}

    def px(key: str) -> float:
        if len(keys) <= 1:
            return left + plot_w / 2
        return left + plot_w * position[key] / (len(keys) - 1)

    def py(value: float) -> float:
        return top + plot_h * (1 - (min(high, max(low, value)) - low) / (high - low))

    parts = _open(
        width, height, title, f"{len(series)} lines over {len(keys)} windows; {y_label}.", "lines", chart_id
    )
    for k in range(5):
        tick = low + (high - low) * k / 4
        ty = _num(py(tick))
        parts.append(
            f'<line x1="{left}" y1="{ty}" x2="{left + plot_w}" y2="{ty}" stroke="{GRID}" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{float(ty) + 4:.1f}" text-anchor="end" fill="{MUTED}" '
            f'font-size="11">{tick:g}</text>'
        )
    step = max(1, len(keys) // 8)
    for k, key in enumerate(keys):
        if k % step == 0 or k == len(keys) - 1:
            parts.append(
                f'<text x="{_num(px(key))}" y="{top + plot_h + 16}" text-anchor="middle" fill="{MUTED}" '
                f'font-size="11">'
                f"{escape(key)}</text>"
            )
    parts.append(
        f'<text x="14" y="{top + plot_h / 2:.1f}" transform="rotate(-90 14 {top + plot_h / 2:.1f})" '
        f'text-anchor="middle" fill="{MUTED}" font-size="11">{escape(y_label)}</text>'
    )
    for s_index, line in enumerate(series):
        stroke = SERIES_COLOURS[s_index % len(SERIES_COLOURS)]
        points = [p for p in line.points if p.key in position]
        if len(points) > 1:
            path = " ".join(f"{_num(px(p.key))},{_num(py(p.value))}" for p in points)
            parts.append(
                f'<polyline class="series" points="{path}" fill="none" stroke="{stroke}" stroke-width="2"/>'
            )
        for p in points:
            label = f"{line.name}, {p.key}: {p.value:.3f} ({p.n} labels)"
            dot = (
                f'<circle class="point" cx="{_num(px(p.key))}" cy="{_num(py(p.value))}" r="4" '
                f'fill="{stroke}">'
                f"<title>{escape(label)}</title></circle>"
            )
            parts.append(_link(p.href, dot, label))
        lx = left + (s_index % 3) * (plot_w / 3)
        ly = top + plot_h + 36 + 18 * (s_index // 3)
        parts.append(
            f'<g class="legend"><rect x="{_num(lx)}" y="{ly - 9}" width="12" height="12" fill="{stroke}"/>'
            f'<text x="{_num(lx + 18)}" y="{ly + 1}" fill="{TEXT}" font-size="12">'
            f"{escape(line.name)}</text></g>"
        )
    parts.append("</svg>")
    return "\n".join(parts)
