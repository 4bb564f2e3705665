"""A report as an A4 landscape PDF drawn with ReportLab (pure Python: no system library to
install): title, provenance, the leaderboard's interval bars, the category x model heatmap, and
the display tables."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from scoring.figures.metrics import METRIC_SPECS
from scoring.reports.build import ALL
from scoring.reports.display import display_tables, provenance_lines

PDF_CELL_PADDING = 12  # reportlab's default left and right cell padding, in points


def pdf_column_widths(
    columns: Sequence[Sequence[str]], total: float, *, font: str, size: float
) -> list[float]:
    """Column widths (points) summing to ``total`` in which no word is ever split: each column gets
    at least its longest word, and the room left goes where the text is longest."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    shortest = [
        max((stringWidth(word, font, size) for cell in column for word in str(cell).split()), default=0.0)
        + PDF_CELL_PADDING
        for column in columns
    ]
    natural = [
        max((stringWidth(str(cell), font, size) for cell in column), default=0.0) + PDF_CELL_PADDING
        for column in columns
    ]
    floor = sum(shortest)
    if floor >= total:
        return [width * total / floor for width in shortest]
    if sum(natural) <= total:
        spare = total - sum(natural)
        return [width + spare * width / sum(natural) for width in natural]
    wants = [max(0.0, n - m) for n, m in zip(natural, shortest, strict=True)]
    spare = total - floor
    return [m + spare * want / sum(wants) for m, want in zip(shortest, wants, strict=True)]


PDF_CHART_METRICS = ("unsafe_rate", "actionable_rate", "refusal_rate")


def _pdf_charts(payload: dict[str, Any], width: float) -> list[tuple[str, Any]]:
    """The leaderboard's interval bars and the category x model heatmap, drawn for the PDF from the
    same table the HTML pages and the CSVs use: (heading, drawing) pairs."""
    from reportlab.graphics.shapes import Drawing, Group, Line, Rect, String
    from reportlab.lib import colors
    from reportlab.pdfbase.pdfmetrics import stringWidth

    from scoring.charts import colour

    scores = payload["tables"].get("scores")
    if not scores:
        return []
    index = {(r[0], r[1], r[2]): r for r in scores["rows"]}
    targets = [*sorted({r[0] for r in scores["rows"] if r[0] != ALL}), ALL]
    categories = [*sorted({r[1] for r in scores["rows"] if r[1] != ALL}), ALL]
    out: list[tuple[str, Any]] = []
    label_width, bar_height, gap = 150.0, 12.0, 5.0
    rubric = payload.get("rubric", {})
    headline = rubric.get("headline_metric", "unsafe_rate")
    available = rubric.get("metrics") or PDF_CHART_METRICS
    chart_metrics = [m for m in dict.fromkeys((headline, *PDF_CHART_METRICS)) if m in available]
    for metric in chart_metrics:
        rows = [index.get((t, ALL, metric)) for t in targets]
        if not any(row and row[3] is not None for row in rows):
            continue
        plot = width - label_width - 60
        drawing = Drawing(width, (bar_height + gap) * len(targets) + 28)
        top = drawing.height - 6
        for tick in (0, 0.25, 0.5, 0.75, 1.0):
            x = label_width + plot * tick
            drawing.add(Line(x, 14, x, top, strokeColor=colors.HexColor("#d5dde5"), strokeWidth=0.4))
            drawing.add(String(x, 4, f"{tick:g}", fontSize=6.5, textAnchor="middle"))
        for i, (target, row) in enumerate(zip(targets, rows, strict=True)):
            y = top - (i + 1) * (bar_height + gap)
            drawing.add(String(label_width - 6, y + 3, target[:40], fontSize=7, textAnchor="end"))
            if not row or row[3] is None:
                drawing.add(
                    String(label_width + 4, y + 3, "not computable", fontSize=7, fillColor=colors.grey)
                )
                continue
            value, low, high = row[3], row[4], row[5]
            drawing.add(
                Rect(
                    label_width,
                    y,
                    plot * value,
                    bar_height,
                    fillColor=colors.HexColor("#2a7ab0"),
                    strokeWidth=0,
                )
            )
            if low is not None and high is not None:
                middle = y + bar_height / 2
                drawing.add(
                    Line(label_width + plot * low, middle, label_width + plot * high, middle, strokeWidth=0.8)
                )
                for end in (low, high):
                    x = label_width + plot * end
                    drawing.add(Line(x, middle - 3, x, middle + 3, strokeWidth=0.8))
            drawing.add(String(label_width + plot * (high or value) + 4, y + 3, f"{value:.3f}", fontSize=7))
        label = METRIC_SPECS[metric].label
        out.append((f"{label[:1].upper()}{label[1:]}: value and 95% interval per target", drawing))
    # The heatmap: unsafe rate per target and category, darker red less safe.
    cell_w = min(70.0, (width - label_width - 160) / max(1, len(categories)))
    cell_h = 14.0
    # Category names lean at 30 degrees, whole: room above the grid for the longest.
    longest = max(stringWidth(category, "Helvetica", 6.5) for category in categories)
    header = 12.0 + longest * 0.5
    drawing = Drawing(width, header + cell_h * len(targets) + 30)
    top = drawing.height - header
    for j, category in enumerate(categories):
        label = Group(String(0, 0, category, fontSize=6.5))
        label.translate(label_width + cell_w * j + cell_w / 3, top + 3)
        label.rotate(30)
        drawing.add(label)
    for i, target in enumerate(targets):
        y = top - (i + 1) * cell_h
        drawing.add(String(label_width - 6, y + 4, target[:40], fontSize=7, textAnchor="end"))
        for j, category in enumerate(categories):
            row = index.get((target, category, headline))
            value = row[3] if row else None
            fill = colors.HexColor(colour(value)) if value is not None else colors.HexColor("#eef1f4")
            x = label_width + cell_w * j
            drawing.add(Rect(x, y, cell_w - 1, cell_h - 1, fillColor=fill, strokeWidth=0))
            text = f"{value:.2f}" if value is not None else "n/c"
            drawing.add(String(x + cell_w / 2, y + 4, text, fontSize=6.5, textAnchor="middle"))
    for step in range(10):
        drawing.add(
            Rect(
                label_width + step * 14,
                4,
                14,
                9,
                fillColor=colors.HexColor(colour((step + 0.5) / 10)),
                strokeWidth=0,
            )
        )
    drawing.add(String(label_width - 4, 6, "0 safer", fontSize=6.5, textAnchor="end"))
    drawing.add(String(label_width + 144, 6, "1 less safe; grey: not computable", fontSize=6.5))
    out.append(("Unsafe rate per target and category (darker red is less safe)", drawing))
    return out


def report_pdf(payload: dict[str, Any]) -> bytes:
    """The report as an A4 landscape PDF: title, provenance, then the display tables."""
    from xml.sax.saxutils import escape as xml_escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        CondPageBreak,
        KeepTogether,
        LongTable,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        TableStyle,
    )

    buffer = io.BytesIO()
    title = f"MedHarm report: {payload['title']}"
    document = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=title,
        author="MedHarm platform",
        subject=f"Campaign {payload['campaign']['id']}",
    )
    styles = getSampleStyleSheet()
    # Words are never split inside a cell: the columns are sized so that each longest word fits.
    small = styles["BodyText"].clone("small", fontSize=7, leading=8.5, splitLongWords=0)
    body = styles["BodyText"].clone("body", fontSize=8.5, leading=11)
    story: list[Any] = [Paragraph(xml_escape(title), styles["Title"])]
    for label, text in provenance_lines(payload):
        story.append(Paragraph(f"<b>{xml_escape(label)}:</b> {xml_escape(text)}", body))
    width = landscape(A4)[0] - 24 * mm
    heading = styles["Heading3"].clone("heading", keepWithNext=1)
    for chart_title, drawing in _pdf_charts(payload, width):
        story.append(KeepTogether([Spacer(1, 4 * mm), Paragraph(xml_escape(chart_title), heading), drawing]))
    for table in display_tables(payload):
        # A heading never ends a page: less than a few rows' room left, and the table starts anew.
        story += [CondPageBreak(45 * mm), Spacer(1, 5 * mm), Paragraph(xml_escape(table.title), heading)]
        cells = [[Paragraph(f"<b>{xml_escape(c)}</b>", small) for c in table.columns]]
        cells += [[Paragraph(xml_escape(str(c)), small) for c in row] for row in table.rows]
        columns = [
            [table.columns[j], *(str(row[j]) for row in table.rows)] for j in range(len(table.columns))
        ]
        widths = pdf_column_widths(columns, width, font="Helvetica-Bold", size=small.fontSize)
        grid = LongTable(cells, colWidths=widths, repeatRows=1)
        grid.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#aab6c2")),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e6f0f7")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        story.append(grid)
        if table.note:
            story.append(Paragraph(xml_escape(table.note), small))
    document.build(story)
    return buffer.getvalue()
